using System.Runtime.InteropServices;

namespace GigaPath.Slides.Native;

/// <summary>
/// Owns an <c>openslide_t*</c>. Being a <see cref="SafeHandle"/>, it cannot be closed while a read on another thread
/// still holds it (reads call DangerousAddRef), which is what makes a shared slide safe for concurrent tile reads.
/// </summary>
internal sealed unsafe class OpenSlideHandle : SafeHandle
{
    private readonly OpenSlideLibrary _lib;

    public OpenSlideHandle(OpenSlideLibrary lib, IntPtr handle) : base(IntPtr.Zero, ownsHandle: true)
    {
        _lib = lib;
        SetHandle(handle);
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        _lib.Close(handle);
        return true;
    }
}

/// <summary>Keeps the handle open for the duration of one native call (throws if it is already disposed).</summary>
internal readonly ref struct HandleLease
{
    private readonly SafeHandle _handle;

    public IntPtr Pointer { get; }

    public HandleLease(SafeHandle handle)
    {
        bool added = false;
        handle.DangerousAddRef(ref added);
        _handle = handle;
        Pointer = handle.DangerousGetHandle();
    }

    public void Dispose() => _handle.DangerousRelease();
}
