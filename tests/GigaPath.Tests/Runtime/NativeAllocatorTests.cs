using System.Runtime.InteropServices;
using GigaPath.Runtime;
using NUnit.Framework;
using TorchSharp;

namespace GigaPath.Tests.Runtime;

public class NativeAllocatorTests
{
    private static readonly Version Glibc236 = new(2, 36);

    [TestCase("always [madvise] never", "glibc.malloc.hugetlb=1", ExpectedResult = true)]
    [TestCase("always [madvise] never", "glibc.malloc.tcache_count=0:glibc.malloc.hugetlb=1", ExpectedResult = true)]
    [TestCase("always [madvise] never", "glibc.malloc.hugetlb=1:glibc.malloc.hugetlb=0", ExpectedResult = false)]
    [TestCase("always [madvise] never", "glibc.malloc.hugetlb=2", ExpectedResult = false)]
    [TestCase("always [madvise] never", null, ExpectedResult = false)]
    [TestCase("[always] madvise never", null, ExpectedResult = true)]
    [TestCase("always madvise [never]", "glibc.malloc.hugetlb=1", ExpectedResult = false)]
    [TestCase(null, "glibc.malloc.hugetlb=1", ExpectedResult = false)]
    public bool HugePagesBackMallocMappingsReadsTheThpModeAndTheTunable(string? thp, string? tunables) =>
        NativeAllocator.HugePagesBackMallocMappings(thp, tunables, Glibc236);

    [Test]
    public void TheTunableNeedsGlibc235()
    {
        Assert.That(NativeAllocator.HugePagesBackMallocMappings("always [madvise] never", "glibc.malloc.hugetlb=1", new Version(2, 31)), Is.False);
        Assert.That(NativeAllocator.HugePagesBackMallocMappings("always [madvise] never", "glibc.malloc.hugetlb=1", null), Is.False);
    }

    /// <summary>
    /// Inside the scope a large block that the heap's free space cannot hold is a mapping of its own (glibc's count of
    /// mapped bytes grows by it and shrinks when it is freed) while a small one stays in the heap; after the scope the
    /// heap grows for such a block again. (A block that fits a free chunk is served from the heap either way; the test
    /// thread's arena may be one of glibc's per-thread arenas rather than the main heap.)
    /// </summary>
    [Test]
    public void MapLargeBlocksGivesLargeBlocksMappingsOfTheirOwnOnlyWhileItLasts()
    {
        if (!OperatingSystem.IsLinux() || !NativeAllocator.Active)
            Assert.Ignore("the allocator tuning is active on Linux with glibc only");
        // Larger than all the heap's free memory together, so no free chunk can serve it. Never written, so never resident.
        long large = (long)mallinfo2().fordblks + 2L * NativeAllocator.LargeBlockBytes;
        using (NativeAllocator.MapLargeBlocks())
        {
            long before = MappedBytes();
            using (var small = torch.empty(NativeAllocator.LargeBlockBytes / 8, dtype: torch.ScalarType.Byte))
                Assert.That(MappedBytes() - before, Is.LessThan(NativeAllocator.LargeBlockBytes / 8), "a small block is mapped");
            using (var block = torch.empty(large, dtype: torch.ScalarType.Byte))
            {
                Assert.That(MappedBytes() - before, Is.GreaterThanOrEqualTo(large), "a large block came from the heap inside the scope");
            }
            Assert.That(MappedBytes() - before, Is.LessThan(NativeAllocator.LargeBlockBytes), "a freed large block stayed mapped");
        }
        // Outside the scope a thread's arena still maps what exceeds its 64 MB heap, so the block here is below that.
        long after = MappedBytes();
        using (var block = torch.empty(2 * NativeAllocator.LargeBlockBytes, dtype: torch.ScalarType.Byte))
            Assert.That(MappedBytes() - after, Is.LessThan(NativeAllocator.LargeBlockBytes), "a large block was mapped after the scope ended");
    }

    private static long MappedBytes() => (long)mallinfo2().hblkhd;

    [DllImport("libc")]
    private static extern MallInfo2 mallinfo2();

    [StructLayout(LayoutKind.Sequential)]
    private struct MallInfo2
    {
        public nuint arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
    }
}
