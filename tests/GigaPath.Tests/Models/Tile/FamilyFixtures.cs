using System.Text.Json.Nodes;

namespace GigaPath.Tests.Models.Tile;

/// <summary>The other encoders' small fixture models (Fixtures/families), laid out as a downloaded Hugging Face folder.</summary>
public static class FamilyFixtures
{
    /// <summary>A path inside the fixture folder of <paramref name="family"/>.</summary>
    public static string Path(string family, params string[] parts) => FixturePaths.Get(["families", family, .. parts]);

    /// <summary>
    /// Writes <paramref name="family"/>'s model into <paramref name="dir"/> as published: config.json without the
    /// fixture block (which records the card's code-level kwargs, and which the engine must not need), the weights.
    /// </summary>
    public static string Publish(string family, string dir, Action<JsonObject>? edit = null)
    {
        Directory.CreateDirectory(dir);
        var config = JsonNode.Parse(File.ReadAllText(Path(family, "config.json")))!.AsObject();
        if (!config.Remove("fixture"))
            throw new InvalidOperationException($"{family}: the fixture config.json has no fixture block");
        edit?.Invoke(config);
        File.WriteAllText(System.IO.Path.Combine(dir, "config.json"), config.ToJsonString());
        File.Copy(Path(family, "model.safetensors"), System.IO.Path.Combine(dir, "model.safetensors"));
        return dir;
    }

    /// <summary>The fixture's two PNGs in the order of its <c>image_embedding</c> rows.</summary>
    public static string[] Images(string family) =>
        [Path(family, "images", "prov_normal_000_1.png"), Path(family, "images", "01581x_25327y.png")];
}
