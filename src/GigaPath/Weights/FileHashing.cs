using System.Security.Cryptography;

namespace GigaPath.Weights;

/// <summary>SHA-256 of files, streamed, for provenance records (weights used, source converted).</summary>
public static class FileHashing
{
    /// <summary>Lower-case hex SHA-256 of the bytes of <paramref name="files"/> concatenated in the given order.</summary>
    public static string Sha256(IEnumerable<string> files)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        foreach (var file in files)
        {
            using var s = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
            int n;
            while ((n = s.Read(buffer, 0, buffer.Length)) > 0)
                hash.AppendData(buffer, 0, n);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    public static string Sha256(string file) => Sha256(new[] { file });
}
