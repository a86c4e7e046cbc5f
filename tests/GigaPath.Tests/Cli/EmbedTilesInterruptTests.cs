using GigaPath.Tests.Models.Tile;
using NUnit.Framework;

namespace GigaPath.Tests.Cli;

/// <summary>
/// Ctrl-C on a real <c>embed-tiles</c> process: the token reaches the tile loader and the model, the command stops
/// well before its tiles are done, exits 130 and writes no output file.
/// </summary>
[NonParallelizable]
public class EmbedTilesInterruptTests
{
    private static readonly TimeSpan Hang = TimeSpan.FromMinutes(3);

    [Test]
    public async Task SigintStopsTheRunAndWritesNothing()
    {
        var dir = FixturePaths.TempDir("embed-tiles-sigint");
        try
        {
            // 4,000 tiles (links to one real tile): tens of seconds for the tiny model, so the signal lands mid-run.
            var tiles = Directory.CreateDirectory(Path.Combine(dir, "tiles")).FullName;
            var source = FixturePaths.Get("preprocess", "01581x_25327y.png");
            for (int i = 0; i < 4000; i++)
                File.CreateSymbolicLink(Path.Combine(tiles, $"t{i:D5}.png"), source);
            var output = Path.Combine(dir, "out.safetensors");
            using var run = CliProcess.Start("embed-tiles", "--model", TinyTileFixture.Dir, "--out", output, "--batch-size", "8", tiles);
            // The progress line ("\r8/4000 tiles, ...") says the first batch went through the model.
            await run.LineAsync(l => l.Contains("/4000 tiles")).WaitAsync(Hang);
            run.Signal(CliProcess.SigInt);
            int exit = await run.ExitCodeAsync(Hang);
            var text = run.Output;
            Assert.That(exit, Is.EqualTo(130), text);
            Assert.That(text, Does.Contain("interrupted").And.Contain("cancelled"));
            Assert.That(text, Does.Not.Contain("4000/4000 tiles"), "stopped before the end");
            Assert.That(File.Exists(output), Is.False, "no output from a cancelled run");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
