using System.IO.Compression;
using System.Text;
using GigaPath.Runtime;
using GigaPath.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Tests.Cli;

public class ConvertWeightsCommandTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = FixturePaths.TempDir("convert-weights");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    [Test]
    public async Task AFifoNamedLikeACheckpointIsRefusedWithoutOpeningIt()
    {
        var fifo = Path.Combine(_dir, "pytorch_model.pt");
        Pipeline.CohortInputsTests.MakeFifo(fifo);
        var run = await Task.Run(() => CliInvocation.Run("convert-weights", fifo, Path.Combine(_dir, "out.safetensors"))).WaitAsync(TimeSpan.FromMinutes(1));
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Error, Does.Contain(fifo).And.Contain("FIFO (named pipe), not a regular file"));
    }

    [Test]
    public void PthBecomesTheSameSafetensorsWithProvenance()
    {
        var pth = FixturePaths.Get("slide_encoder_tiny", "model.pth");
        var output = Path.Combine(_dir, "out.safetensors");
        var run = CliInvocation.Run("convert-weights", pth, output);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        Assert.That(Directory.GetFiles(_dir), Has.Length.EqualTo(1), "no temporary file left behind");

        using var converted = SafeTensorsFile.Open(output);
        using var reference = SafeTensorsFile.Open(FixturePaths.Get("slide_encoder_tiny", "model.safetensors"));
        Assert.That(converted.Names.Order(), Is.EqualTo(reference.Names.Order()));
        foreach (var name in reference.Names)
        {
            using var scope = NewDisposeScope();
            var (a, b) = (converted.Load(name), reference.Load(name));
            Assert.That(a.dtype, Is.EqualTo(b.dtype), name);
            Assert.That(a.shape, Is.EqualTo(b.shape), name);
            Assert.That(a.equal(b).all().item<bool>(), Is.True, name);
        }
        Assert.That(converted.Metadata["source"], Is.EqualTo("model.pth"));
        Assert.That(converted.Metadata["source_sha256"], Is.EqualTo(FileHashing.Sha256(pth)));
        Assert.That(converted.Metadata["source_key"], Is.EqualTo("model"));
        Assert.That(converted.Metadata["engine_version"], Is.EqualTo(EngineInfo.Version));
        Assert.That(converted.Metadata["format"], Is.EqualTo("pt"));
    }

    [Test]
    public void CastsFloatingTensorsToBFloat16()
    {
        var source = FixturePaths.Get("tile_encoder_tiny", "model.safetensors");
        var output = Path.Combine(_dir, "bf16.safetensors");
        var run = CliInvocation.Run("convert-weights", source, output, "--dtype", "bfloat16");
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        using var converted = SafeTensorsFile.Open(output);
        using var reference = SafeTensorsFile.Open(source);
        Assert.That(converted.Metadata["dtype"], Is.EqualTo("bfloat16"));
        foreach (var name in reference.Names)
        {
            using var scope = NewDisposeScope();
            Assert.That(converted.GetInfo(name).DType, Is.EqualTo(TensorDType.BF16), name);
            var expected = reference.Load(name).to(ScalarType.BFloat16);
            Assert.That(converted.Load(name).equal(expected).all().item<bool>(), Is.True, name);
        }
    }

    [Test]
    public void ExplicitKeyThatIsAbsentFails()
    {
        var run = CliInvocation.Run("convert-weights", FixturePaths.Get("slide_encoder_tiny", "model.pth"), Path.Combine(_dir, "o.safetensors"), "--key", "ema");
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Error, Does.Contain("model.pth").And.Contain("\"ema\""));
        Assert.That(Directory.GetFiles(_dir), Is.Empty);
    }

    [Test]
    public void PickleWithAForbiddenGlobalIsRefusedWithoutRunningIt()
    {
        // torch.save layout: archive/data.pkl whose pickle calls os.system("touch <marker>").
        var marker = Path.Combine(_dir, "pwned");
        var pickle = new List<byte> { 0x80, 0x02 };
        pickle.AddRange(Encoding.ASCII.GetBytes("cos\nsystem\n("));
        var arg = Encoding.UTF8.GetBytes($"touch {marker}");
        pickle.Add((byte)'X');
        pickle.AddRange(BitConverter.GetBytes(arg.Length));
        pickle.AddRange(arg);
        pickle.AddRange(Encoding.ASCII.GetBytes("tR."));
        var evil = Path.Combine(_dir, "evil.pth");
        using (var zip = ZipFile.Open(evil, ZipArchiveMode.Create))
        {
            using var s = zip.CreateEntry("archive/data.pkl").Open();
            s.Write(pickle.ToArray());
        }

        var run = CliInvocation.Run("convert-weights", evil, Path.Combine(_dir, "out.safetensors"));
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Error, Does.Contain("evil.pth").And.Contain("os.system").And.Contain("not allowed"));
        Assert.That(File.Exists(marker), Is.False);
        Assert.That(File.Exists(Path.Combine(_dir, "out.safetensors")), Is.False);
    }

    [Test]
    public void RefusesToOverwriteItsInput()
    {
        var copy = Path.Combine(_dir, "model.safetensors");
        File.Copy(FixturePaths.Get("tile_encoder_tiny", "model.safetensors"), copy);
        var run = CliInvocation.Run("convert-weights", copy, copy);
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Error, Does.Contain("overwrite"));
    }

    [Test]
    public void NotACheckpointFails()
    {
        var junk = Path.Combine(_dir, "junk.bin");
        File.WriteAllText(junk, "definitely not a zip");
        var run = CliInvocation.Run("convert-weights", junk, Path.Combine(_dir, "o.safetensors"));
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Error, Does.Contain("junk.bin").And.Contain("not a PyTorch zip checkpoint"));
    }
}
