using System.Security.Cryptography;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Weights;

/// <summary>SHA-256 of files, streamed, for provenance records (weights used, source converted).</summary>
internal static class FileHashing
{
    /// <summary>Lower-case hex SHA-256 of the bytes of <paramref name="files"/> concatenated in the given order.</summary>
    public static string Sha256(IEnumerable<string> files) => Sha256(files, CancellationToken.None);

    /// <summary>As <see cref="Sha256(IEnumerable{string})"/>, stopping with <see cref="OperationCanceledException"/>
    /// between 1 MiB reads once <paramref name="cancellation"/> is signalled.</summary>
    public static string Sha256(IEnumerable<string> files, CancellationToken cancellation)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        foreach (var file in files)
        {
            using var s = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
            int n;
            while ((n = s.Read(buffer, 0, buffer.Length)) > 0)
            {
                cancellation.ThrowIfCancellationRequested();
                hash.AppendData(buffer, 0, n);
            }
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    public static string Sha256(string file) => Sha256(new[] { file });

    /// <summary>
    /// Lower-case hex SHA-256 of a model made in memory: each state-dict entry's name, shape and float32 bytes, in
    /// state-dict order (so the same weights give the same hash whatever device or dtype they sit in).
    /// </summary>
    public static string ParameterSha256(nn.Module model)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (name, tensor) in model.state_dict())
        {
            using var scope = torch.NewDisposeScope();
            hash.AppendData(Encoding.UTF8.GetBytes($"{name}[{string.Join(",", tensor.shape)}]"));
            hash.AppendData(tensor.detach().cpu().to_type(ScalarType.Float32).contiguous().bytes);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
