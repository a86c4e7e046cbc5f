using GigaPath.Models.Slide;

namespace GigaPath.Cli.Commands;

/// <summary>The <c>--pool</c> option's value: "cls" or "mean" (mean when not given).</summary>
internal static class PoolingArgument
{
    public static SlidePooling Parse(string? text) =>
        text is null ? SlidePooling.Mean
        : SlidePoolingNames.TryParse(text, out var pooling) ? pooling
        : throw new GigaPathException($"--pool '{text}' is not supported (use cls or mean)");
}
