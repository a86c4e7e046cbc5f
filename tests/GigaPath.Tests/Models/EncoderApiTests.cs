using System.Text.Json;
using GigaPath.Models;
using GigaPath.Models.Slide;
using GigaPath.Models.Tile;
using GigaPath.Runtime;
using GigaPath.Tests.Models.Tile;
using GigaPath.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Tests.Models;

/// <summary>
/// The library's encoder API as a user meets it: both encoders built from a config in code, described on the meta
/// device, loaded from a folder or a single weight file, run on images and tensors, and refusing bad input and
/// devices with our own messages.
/// </summary>
public class EncoderApiTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("gigapath-api-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static (string Name, long[] Shape)[] ReferenceKeys(string fixture, out long total)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(FixturePaths.Get(fixture)));
        total = doc.RootElement.GetProperty("total_parameters").GetInt64();
        return doc.RootElement.GetProperty("keys").EnumerateArray()
            .Select(k => (k.GetProperty("name").GetString()!, k.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray()))
            .ToArray();
    }

    private static void AssertDescribes(ModelDescription description, (string Name, long[] Shape)[] keys, long total)
    {
        Assert.That(description.Parameters.Select(p => p.Name), Is.EquivalentTo(keys.Select(k => k.Name)));
        var shapes = keys.ToDictionary(k => k.Name, k => k.Shape);
        foreach (var p in description.Parameters)
            Assert.That(p.Shape, Is.EqualTo(shapes[p.Name]), p.Name);
        Assert.That(description.ParameterCount, Is.EqualTo(total));
        Assert.That(description.Float32Bytes, Is.EqualTo(total * 4));
    }

    [Test]
    public void FullSizeTileEncoderIsDescribedOnTheMetaDevice()
    {
        var keys = ReferenceKeys("tile_encoder_full_keys.json", out long total);
        AssertDescribes(TileEncoder.Describe(TileEncoderConfig.ProvGigaPath), keys, total);
    }

    [Test]
    public void FullSizeSlideEncoderIsDescribedOnTheMetaDevice()
    {
        var keys = ReferenceKeys("slide_encoder_full_keys.json", out long total);
        AssertDescribes(SlideEncoder.Describe(SlideEncoderConfig.ProvGigaPath), keys, total);
    }

    [Test]
    public void DescribingLeavesTheDefaultDeviceAlone()
    {
        _ = SlideEncoder.Describe(SlideEncoderConfig.ProvGigaPath);
        using var t = torch.zeros(2);
        Assert.That(t.device_type, Is.EqualTo(DeviceType.CPU));
    }

    [Test]
    public void BothEncodersAreBuiltFromConfigsWrittenInCodeWithTheSameOptionsAndSeeds()
    {
        var options = new EncoderOptions { Device = CPU, DType = ScalarType.Float32 };
        var tileConfig = new TileEncoderConfig { ImageSize = 32, PatchSize = 16, EmbedDim = 24, Depth = 1, HeadCount = 2, MlpRatio = 4, LayerScaleInit = 0.1 };
        var slideConfig = new SlideEncoderConfig { InputChannels = 24, EmbedDim = 16, Depth = 1, HeadCount = 2, FeedForwardDim = 32, SegmentLengths = [4], DilationRatios = [1] };

        using var tileA = TileEncoder.CreateRandom(tileConfig, seed: 3, options);
        using var tileB = TileEncoder.CreateRandom(tileConfig, seed: 3, options);
        using var slide = SlideEncoder.CreateRandom(slideConfig, seed: 3, options);
        Assert.That(tileA.WeightsSha256, Is.EqualTo(tileB.WeightsSha256));
        Assert.That(tileA.Source, Is.Null);
        Assert.That(slide.Options.Device.type, Is.EqualTo(DeviceType.CPU));

        using var pixels = torch.randn([3, 3, 32, 32], generator: new Generator(1));
        using var tiles = tileA.Embed(pixels);
        Assert.That(tiles.Embeddings.shape, Is.EqualTo(new long[] { 3, 24 }));
        using var coords = torch.tensor(new long[] { 0, 0, 256, 0, 0, 256 }, [3, 2]);
        using var slideOut = slide.Embed(tiles.Embeddings, coords);
        Assert.That(slideOut.GetSlideEmbedding(SlidePooling.Mean).shape, Is.EqualTo(new long[] { 1, 16 }));
        Assert.That(slideOut.ContextualTileEmbeddings.shape, Is.EqualTo(new long[] { 3, 16 }));
    }

    [Test]
    public void ConfigErrorsNameTheCSharpPropertyForACodeConfigAndTheJsonFieldForAFile()
    {
        var code = Assert.Throws<ModelConfigException>(() =>
            new TileEncoderConfig { ImageSize = 30, PatchSize = 16, EmbedDim = 24, Depth = 1, HeadCount = 2, MlpRatio = 4, LayerScaleInit = 0.1 }.Validate())!;
        Assert.That(code.Message, Does.Contain("ImageSize 30 is not divisible by PatchSize 16"));

        var json = File.ReadAllText(FixturePaths.Get("tile_encoder_tiny", "config.json")).Replace("\"patch_size\": 16", "\"patch_size\": 15");
        Assume.That(json, Does.Contain("15"));
        var file = Assert.Throws<ModelConfigException>(() => TileEncoderConfig.FromJson(json, "edited.json"))!;
        Assert.That(file.Message, Does.StartWith("edited.json: model_args.img_size 224 is not divisible by patch_size 15"));

        var slide = Assert.Throws<ModelConfigException>(() =>
            new SlideEncoderConfig { InputChannels = 24, EmbedDim = 18, Depth = 1, HeadCount = 2, FeedForwardDim = 32, SegmentLengths = [4], DilationRatios = [1] }.Validate())!;
        Assert.That(slide.Message, Does.Contain("EmbedDim 18 must be a multiple of 4"));
    }

    private static void AssertTinyTileParity(TileEncoder encoder)
    {
        using var pixels = TinyTileFixture.Pixels();
        using var expected = SafeTensorsFile.Open(FixturePaths.Get("tile_encoder_tiny", "expected.safetensors"));
        using var want = expected.Load("embedding");
        using var got = encoder.Embed(pixels);
        Assert.That(TinyTileFixture.MaxAbsDiff(got.Embeddings, want), Is.LessThanOrEqualTo(1e-5));
    }

    [Test]
    public void TileEncoderLoadsFromAFolderAndFromASingleSafetensorsFile()
    {
        using (var folder = TileEncoder.Load(TinyTileFixture.Dir))
        {
            AssertTinyTileParity(folder);
            Assert.That(folder.WeightsPath, Is.EqualTo(Path.GetFullPath(FixturePaths.Get("tile_encoder_tiny", "model.safetensors"))));
        }
        using var file = TileEncoder.Load(FixturePaths.Get("tile_encoder_tiny", "model.safetensors"));
        AssertTinyTileParity(file);
    }

    [Test]
    public void TileEncoderLoadsAPyTorchBinCheckpoint()
    {
        PythonTorch.RequireOrIgnore();
        // A pytorch_model.bin made by torch.save of the fixture's state dict (read from its safetensors by hand).
        const string script = """
            import json, struct, sys, torch
            src, dst = sys.argv[1], sys.argv[2]
            raw = open(src, 'rb').read()
            n = struct.unpack('<Q', raw[:8])[0]
            header = json.loads(raw[8:8 + n])
            data = raw[8 + n:]
            sd = {}
            for name, info in header.items():
                if name == '__metadata__': continue
                a, b = info['data_offsets']
                sd[name] = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32).reshape(info['shape']).clone()
            torch.save(sd, dst)
            """;
        File.Copy(FixturePaths.Get("tile_encoder_tiny", "config.json"), Path.Combine(_dir, "config.json"));
        var bin = Path.Combine(_dir, "pytorch_model.bin");
        var (code, output) = PythonTorch.Run(script, [FixturePaths.Get("tile_encoder_tiny", "model.safetensors"), bin]);
        Assert.That(code, Is.EqualTo(0), output);

        using (var folder = TileEncoder.Load(_dir))
        {
            Assert.That(folder.WeightsPath, Is.EqualTo(Path.GetFullPath(bin)));
            AssertTinyTileParity(folder);
        }
        using var file = TileEncoder.Load(bin);
        AssertTinyTileParity(file);
    }

    private static void AssertTinySlideParity(SlideEncoder encoder)
    {
        using var input = SafeTensorsFile.Open(FixturePaths.Get("slide_encoder_tiny", "input.safetensors"));
        using var expected = SafeTensorsFile.Open(FixturePaths.Get("slide_encoder_tiny", "expected.safetensors"));
        using var x = input.Load("tile_embeddings");
        using var c = input.Load("coords");
        using var got = encoder.Embed(x, c);
        using var want = expected.Load("embed_default");
        Assert.That(TinyTileFixture.MaxAbsDiff(got.ClsEmbedding, want), Is.LessThanOrEqualTo(1e-5));
    }

    [Test]
    public void SlideEncoderLoadsFromAFolderAndFromSingleSafetensorsPthAndBinFiles()
    {
        using (var folder = SlideEncoder.Load(FixturePaths.Get("slide_encoder_tiny")))
            AssertTinySlideParity(folder);
        using (var safetensors = SlideEncoder.Load(FixturePaths.Get("slide_encoder_tiny", "model.safetensors")))
            AssertTinySlideParity(safetensors);
        using (var pth = SlideEncoder.Load(FixturePaths.Get("slide_encoder_tiny", "model.pth")))
        {
            Assert.That(pth.WeightsPath, Is.EqualTo(Path.GetFullPath(FixturePaths.Get("slide_encoder_tiny", "model.pth"))));
            AssertTinySlideParity(pth);
        }
        // The same checkpoint under the Hugging Face PyTorch name, found in a folder by the one weight-file resolver.
        File.Copy(FixturePaths.Get("slide_encoder_tiny", "config.json"), Path.Combine(_dir, "config.json"));
        File.Copy(FixturePaths.Get("slide_encoder_tiny", "model.pth"), Path.Combine(_dir, "pytorch_model.bin"));
        using var bin = SlideEncoder.Load(_dir);
        Assert.That(Path.GetFileName(bin.WeightsPath), Is.EqualTo("pytorch_model.bin"));
        AssertTinySlideParity(bin);
    }

    [Test]
    public void EmbedImagesPreprocessesWithTheConfigAndMatchesTheReference()
    {
        using var encoder = TileEncoder.Load(TinyTileFixture.Dir);
        string[] files = [FixturePaths.Get("preprocess", "prov_normal_000_1.png"), FixturePaths.Get("preprocess", "01581x_25327y.png")];
        using var expected = SafeTensorsFile.Open(FixturePaths.Get("preprocess", "expected.safetensors"));
        using var want = expected.Load("embedding");

        using var result = encoder.EmbedImages(files);
        Assert.That(result.Count, Is.EqualTo(2));
        Assert.That(result.Embeddings.dtype, Is.EqualTo(ScalarType.Float32));
        Assert.That(result.Embeddings.device_type, Is.EqualTo(DeviceType.CPU));
        Assert.That(TinyTileFixture.MaxAbsDiff(result.Embeddings, want), Is.LessThanOrEqualTo(1e-5));

        // One image per forward pass gives the same rows: batching does not change a tile's embedding.
        using var oneByOne = encoder.EmbedImages(files, batchSize: 1);
        Assert.That(TinyTileFixture.MaxAbsDiff(oneByOne.Embeddings, want), Is.LessThanOrEqualTo(1e-5));
    }

    [Test]
    public void EmbedImagesNamesAFileThatIsNotAnImage()
    {
        using var encoder = TileEncoder.Load(TinyTileFixture.Dir);
        var bad = Path.Combine(_dir, "notes.png");
        File.WriteAllText(bad, "not an image");
        var e = Assert.Throws<ImageDecodeException>(() => encoder.EmbedImages([FixturePaths.Get("preprocess", "prov_normal_000_1.png"), bad]))!;
        Assert.That(e.Message, Does.Contain("notes.png"));
    }

    [Test]
    public void TileEncoderRefusesNonFinitePixelsNamingTheTile()
    {
        using var encoder = TileEncoder.Load(TinyTileFixture.Dir);
        using var pixels = TinyTileFixture.Pixels();
        pixels[1, 2, 100, 7] = torch.tensor(float.NaN);
        var e = Assert.Throws<GigaPathException>(() => encoder.Embed(pixels))!;
        Assert.That(e.Message, Does.StartWith("pixel_values: tile 1 holds NaN or infinity"));
    }

    [Test]
    public void SlideEncoderRefusesNonFiniteFeaturesNamingTheTile()
    {
        using var encoder = SlideEncoder.Load(FixturePaths.Get("slide_encoder_tiny"));
        using var input = SafeTensorsFile.Open(FixturePaths.Get("slide_encoder_tiny", "input.safetensors"));
        using var x = input.Load("tile_embeddings");
        using var c = input.Load("coords");
        x.view(-1, x.shape[^1])[3, 5] = torch.tensor(float.PositiveInfinity);
        var e = Assert.Throws<GigaPathException>(() => encoder.Embed(x, c))!;
        Assert.That(e.Message, Does.StartWith("tile embeddings: tile 3 holds"));
    }

    [Test]
    public void CudaOnACpuBuildIsOurMessageForBothEncoders()
    {
        Assume.That(torch.cuda.is_available(), Is.False, "this machine has CUDA");
        // TorchSharp's own torch.CUDA property throws before any of our code runs on a CPU build; a CUDA device made
        // any other way reaches the encoders' check.
        var options = new EncoderOptions { Device = new Device(DeviceType.CUDA, 0) };
        var tile = Assert.Throws<GigaPathException>(() => TileEncoder.Load(TinyTileFixture.Dir, options))!;
        Assert.That(tile.Message, Does.Contain("CUDA is not available"));
        var slide = Assert.Throws<GigaPathException>(() => SlideEncoder.CreateRandom(SlideEncoderConfig.ProvGigaPath, options: options))!;
        Assert.That(slide.Message, Does.Contain("CUDA is not available"));
        var parsed = Assert.Throws<GigaPathException>(() => DeviceSelection.ParseDevice("cuda"))!;
        Assert.That(parsed.Message, Does.Contain("CUDA is not available"));
    }

    [Test]
    public void UnsupportedDTypesAreRefusedByTheOneWhitelist()
    {
        var options = new EncoderOptions { DType = ScalarType.Int32 };
        var tile = Assert.Throws<GigaPathException>(() => TileEncoder.Load(TinyTileFixture.Dir, options))!;
        var slide = Assert.Throws<GigaPathException>(() => SlideEncoder.Load(FixturePaths.Get("slide_encoder_tiny"), options))!;
        Assert.That(tile.Message, Is.EqualTo(slide.Message));
        Assert.That(tile.Message, Does.Contain("Int32 is not supported (use float32, bfloat16 or float16)"));
    }
}
