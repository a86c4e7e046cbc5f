using System.Runtime.InteropServices;

namespace GigaPath.Runtime;

/// <summary>
/// Makes libtorch's OpenMP threads sleep instead of spin between parallel regions. libtorch-cpu on Linux ships GNU
/// OpenMP, whose idle threads spin for a while after every parallel region (GOMP_SPINCOUNT, 300,000 iterations by
/// default); in the pipeline the tile readers, the slide encoder's managed code and any other process then compete
/// with spinning threads for the same cores. Measured on the bundled slide with the demo models (2 shared cores): the
/// process used 11-12 s of CPU with spinning threads against 6 s with sleeping ones, and the tile encoder inside the
/// pipeline ran 3.5 → 6.8 tiles/s. Sleeping costs a futex wake-up per parallel region (tens of µs; a full-size tile
/// forward has ~600 regions against seconds of GEMM work).
/// </summary>
internal static class OpenMpWaitPolicy
{
    /// <summary>
    /// Sets OMP_WAIT_POLICY=PASSIVE in the native environment unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT.
    /// Only effective before libtorch (and with it libgomp, which reads its environment when loaded) is loaded, so it
    /// runs first thing in <see cref="NativeAllocator.Configure"/>. .NET's Environment.SetEnvironmentVariable does not
    /// reach the C environment on Unix, hence setenv. Returns whether it set the policy.
    /// </summary>
    public static bool Configure()
    {
        if (!OperatingSystem.IsLinux()) return false;
        if (Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is not null || Environment.GetEnvironmentVariable("GOMP_SPINCOUNT") is not null)
            return false;
        try
        {
            return setenv("OMP_WAIT_POLICY", "PASSIVE", 0) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int setenv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);
}
