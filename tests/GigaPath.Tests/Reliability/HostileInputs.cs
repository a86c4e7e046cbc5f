using GigaPath.Imaging;
using PureHDF;
using PureHDF.Filters;
using PureHDF.VOL.Native;

namespace GigaPath.Tests.Reliability;

/// <summary>
/// Small inputs that used to cost gigabytes (issue 14), built at test time so every byte of them is in the source:
/// an HDF5 file that declares huge never-written datasets, and thin images.
/// </summary>
internal static class HostileInputs
{
    /// <summary>
    /// A CLAM-layout HDF5 file whose <c>features</c> [rows, dim] (float32) and <c>coords</c> [rows, 2] (int64) are
    /// chunked, gzip-filtered and never written: no chunk is allocated, so the file stays a few kilobytes while
    /// reading it materialises rows × (dim + 2) values of fill.
    /// </summary>
    public static void WriteUnwrittenH5(string path, ulong rows, ulong dim)
    {
        // Large chunks keep the chunk index (and so the file) small: 30 chunks for 3 M rows.
        uint chunkRows = (uint)Math.Min(rows, 100_000);
        var gzip = new H5DatasetCreation(Filters: [new H5Filter(DeflateFilter.Id, new Dictionary<string, object> { [DeflateFilter.COMPRESSION_LEVEL] = 4 })]);
        var file = new H5File
        {
            ["features"] = new H5Dataset<float[]>(fileDims: [rows, dim], chunks: [chunkRows, (uint)dim], datasetCreation: gzip),
            ["coords"] = new H5Dataset<long[]>(fileDims: [rows, 2], chunks: [chunkRows, 2], datasetCreation: gzip),
        };
        using (file.BeginWrite(path))
        {
            // Declared only: nothing is written.
        }
    }

    /// <summary>Bytes the current thread allocated on the managed heap while running <paramref name="action"/>.</summary>
    public static long AllocatedBy(Action action)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        action();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    /// <summary>A uniformly grey RGB PNG of the given size (a thin one compresses to a few hundred bytes).</summary>
    public static byte[] Png(int width, int height)
    {
        var pixels = new byte[(long)width * height * 3];
        Array.Fill(pixels, (byte)128);
        return ImageDecoder.EncodePng(new RgbImage(width, height, pixels));
    }
}
