using GigaPath.Models.Slide;
using GigaPath.Runtime;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Tests.Models.Slide;

/// <summary>
/// The two memory devices of the checkpointed training forward: the arena the kept tensors share, and the release of
/// TorchSharp's per-output buffers of custom autograd functions. The full-size effect is measured in the fine-tuning
/// benchmark; these pin down that they are correct.
/// </summary>
public class TrainingMemoryTests
{
    [Test]
    public void ArenaSlicesAreDisjointAlignedAndFallBackWhenFull()
    {
        using var scope = NewDisposeScope();
        using var arena = new ActivationArena(ActivationArena.Footprint(3, 5) + ActivationArena.Footprint(7), ScalarType.Float32, CPU);
        var a = arena.Take([3, 5], ScalarType.Float32);
        Assert.That(arena.Used, Is.EqualTo(16), "15 elements rounded up to the 64-byte boundary");
        var b = arena.Take([7], ScalarType.Float32);
        Assert.That(arena.Used, Is.EqualTo(32));
        var c = arena.Take([2], ScalarType.Float32);
        var d = arena.Take([2], ScalarType.Float64);
        Assert.That(arena.Used, Is.EqualTo(32), "a full arena or another dtype gives tensors of their own");
        a.fill_(1);
        b.fill_(2);
        c.fill_(3);
        d.fill_(4);
        Assert.That(a.shape, Is.EqualTo(new long[] { 3, 5 }));
        Assert.That(a.eq(1).all().item<bool>() && b.eq(2).all().item<bool>() && c.eq(3).all().item<bool>(), "slices overlap");
        Assert.That(d.dtype, Is.EqualTo(ScalarType.Float64));
    }

    /// <summary>A tensor in a mapping of its own behaves as any tensor, and its memory goes when its last view does.</summary>
    [Test]
    public void MappedTensorsHoldValuesAndAreFreedWithTheirLastView()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("anonymous mappings are made on Linux only");
        Assert.That(MappedTensors.Supported, "TorchSharp's THSTensor_new was not found: the training arena would fall back to the heap");
        Tensor view;
        using (var scope = NewDisposeScope())
        {
            var block = MappedTensors.TryEmpty(1 << 20, ScalarType.Float32)!;
            Assert.That(block.shape, Is.EqualTo(new long[] { 1 << 20 }));
            block.copy_(arange(1 << 20, ScalarType.Float32));
            view = block.narrow(0, 1000, 3).MoveToOuterDisposeScope();
        }
        // The block's handle is gone; the view still reads the mapping.
        Assert.That(view.data<float>().ToArray(), Is.EqualTo(new float[] { 1000, 1001, 1002 }));
        view.Dispose();
    }

    /// <summary>
    /// A custom function's output taken from the arena stays usable by autograd while later slices of the same block
    /// are written: a plain view would share the block's version counter and autograd would refuse it.
    /// </summary>
    [Test]
    public void ArenaOutputsOfCustomFunctionsSurviveWritesToLaterSlices()
    {
        using var scope = NewDisposeScope();
        using var arena = new ActivationArena(64, ScalarType.Float32, CPU);
        var x = randn(4, 3).requires_grad_(true);
        var first = Doubling.Apply(x, arena);
        var second = Doubling.Apply(first, arena);
        second.sum().backward();
        Assert.That(x.grad!.eq(4).all().item<bool>(), "d(4x)/dx = 4 everywhere");
    }

    [Test]
    public void OutputBuffersOfCustomFunctionsAreReleasedAndBackwardStillRuns()
    {
        Assert.That(AutogradOutputCache.Supported, "this TorchSharp keeps the per-output buffers elsewhere: update AutogradOutputCache");
        using var scope = NewDisposeScope();
        var x = randn(8, 16).requires_grad_(true);
        var y = Doubling.Apply(x, null);
        Assert.That(Doubling.LastReleased, Is.EqualTo(8 * 16 * sizeof(float)), "the empty_like(output) buffer was freed");
        (y * y).sum().backward();
        Assert.That((x.grad! - 8 * x).abs().max().item<float>(), Is.LessThan(1e-5f), "d(4x²)/dx = 8x");
    }

    /// <summary>y = 2x as a custom function, its output from an arena when given one, its output buffer released.</summary>
    private sealed class Doubling : autograd.SingleTensorFunction<Doubling>
    {
        public static long LastReleased { get; private set; }

        public override string Name => "Doubling";

        public static Tensor Apply(Tensor x, ActivationArena? arena)
        {
            var holder = new Holder(arena);
            var y = apply(x, holder);
            LastReleased = AutogradOutputCache.Release(holder.Context!);
            return y;
        }

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (x, holder) = ((Tensor)vars[0], (Holder)vars[1]);
            holder.Context = ctx;
            var y = holder.Arena?.Take(x.shape, x.dtype) ?? empty_like(x);
            return y.copy_(x).mul_(2);
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput) => [gradOutput.mul(2), null!];

        private sealed class Holder(ActivationArena? arena)
        {
            public ActivationArena? Arena { get; } = arena;
            public autograd.AutogradContext? Context { get; set; }
        }
    }
}
