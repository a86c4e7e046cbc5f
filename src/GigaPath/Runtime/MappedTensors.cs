using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Runtime;

/// <summary>
/// Large CPU tensors in their own anonymous memory mapping instead of malloc's heap. With <see cref="NativeAllocator"/>'s
/// tuning every tensor comes from the heap, which suits short-lived buffers (reused without page faults) but not a
/// block that lives for a whole training step among them: it splits the heap, and the holes it leaves are too small
/// for the next step's buffers, so the heap grows step after step (measured: 5.8 GB resident for a 10k-tile
/// fine-tuning run whose single step needs 3.9 GB). A mapping is returned to the system the moment the tensor's
/// storage is freed and never fragments the heap; it asks for transparent huge pages, so filling it costs one fault
/// per 2 MB where the kernel allows. Linux only (elsewhere, or if TorchSharp's native library lacks the entry point,
/// <see cref="TryEmpty"/> returns null and callers allocate as usual).
/// </summary>
internal static class MappedTensors
{
    private const int ProtReadWrite = 0x1 | 0x2, MapPrivateAnonymous = 0x02 | 0x20, MadvHugePage = 14, MadvDontNeed = 4;
    private static readonly IntPtr MapFailed = new(-1);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void Deleter(IntPtr data);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr NewTensor(IntPtr data, Deleter deleter, long[] sizes, int dims, sbyte scalarType, sbyte dtype,
        int deviceType, int deviceIndex, [MarshalAs(UnmanagedType.U1)] bool requiresGrad);

    private static readonly ConcurrentDictionary<IntPtr, nuint> Sizes = new();
    // Kept in a static field: native code calls it whenever a mapped storage dies.
    private static readonly Deleter Unmap = data =>
    {
        if (Sizes.TryRemove(data, out var length)) _ = munmap(data, length);
    };
    private static readonly Lazy<NewTensor?> Factory = new(FindFactory);

    /// <summary>Whether mapped tensors can be made in this process.</summary>
    public static bool Supported => Factory.Value is not null;

    /// <summary>
    /// An uninitialised contiguous CPU tensor of <paramref name="elements"/> values of <paramref name="dtype"/> in a
    /// mapping of its own (in the current dispose scope), or null where that is not possible.
    /// </summary>
    public static Tensor? TryEmpty(long elements, ScalarType dtype)
    {
        if (Factory.Value is not { } factory || elements <= 0) return null;
        long bytes = elements * dtype.ElementSize();
        var length = (nuint)bytes;
        var data = mmap(IntPtr.Zero, length, ProtReadWrite, MapPrivateAnonymous, -1, 0);
        if (data == MapFailed) return null;
        _ = madvise(data, length, MadvHugePage); // advisory: ignored where THP is off
        Sizes[data] = length;
        var handle = factory(data, Unmap, [elements], 1, (sbyte)dtype, (sbyte)dtype, (int)DeviceType.CPU, -1, false);
        if (handle == IntPtr.Zero)
        {
            Unmap(data);
            torch.CheckForErrors();
            return null;
        }
        return Tensor.UnsafeCreateTensor(handle);
    }

    /// <summary>
    /// An uninitialised contiguous tensor of <paramref name="shape"/> in the current dispose scope: on CPU in a mapping
    /// of its own where the platform allows (<see cref="TryEmpty"/>), else from libtorch's allocator.
    /// </summary>
    public static Tensor Empty(long[] shape, ScalarType dtype, Device device)
    {
        long elements = shape.Aggregate(1L, (a, b) => a * b);
        if (device.type != DeviceType.CPU || TryEmpty(elements, dtype) is not { } flat) return torch.empty(shape, dtype, device);
        if (shape.Length == 1) return flat;
        using (flat) return flat.view(shape);
    }

    /// <summary>TorchSharp's own tensor-from-memory entry point, from the native library TorchSharp itself uses.</summary>
    private static NewTensor? FindFactory()
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            _ = torch.get_num_threads(); // make sure TorchSharp has loaded its native library first
            if (!NativeLibrary.TryLoad("LibTorchSharp", typeof(torch).Assembly, null, out var library)) return null;
            return NativeLibrary.TryGetExport(library, "THSTensor_new", out var entry)
                ? Marshal.GetDelegateForFunctionPointer<NewTensor>(entry)
                : null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            return null;
        }
    }

    /// <summary>
    /// Drops the whole pages of a range of a read-only file mapping from this process's resident memory (Linux; a no-op
    /// elsewhere). They stay in the page cache and fault back in if read again.
    /// </summary>
    public static void DropPages(IntPtr start, long length)
    {
        if (!OperatingSystem.IsLinux()) return;
        long page = Environment.SystemPageSize;
        long first = ((long)start + page - 1) / page * page, end = ((long)start + length) / page * page;
        if (end > first) _ = madvise((IntPtr)first, (nuint)(end - first), MadvDontNeed);
    }

    [DllImport("libc", SetLastError = true)]
    private static extern IntPtr mmap(IntPtr addr, nuint length, int prot, int flags, int fd, nint offset);

    [DllImport("libc")]
    private static extern int munmap(IntPtr addr, nuint length);

    [DllImport("libc")]
    private static extern int madvise(IntPtr addr, nuint length, int advice);
}
