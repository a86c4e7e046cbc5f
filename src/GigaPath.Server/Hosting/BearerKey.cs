using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace GigaPath.Server.Hosting;

/// <summary>
/// Azure ML's key authentication: <c>Authorization: Bearer &lt;key&gt;</c>. Keys are compared as SHA-256 digests in
/// constant time, so neither the key's content nor its length leaks through timing.
/// </summary>
internal sealed class BearerKey
{
    private readonly byte[] _digest;

    public BearerKey(string key) => _digest = SHA256.HashData(Encoding.UTF8.GetBytes(key));

    public bool Accepts(HttpRequest request)
    {
        var values = request.Headers.Authorization;
        if (values.Count != 1 || values[0] is not { } header) return false;
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return false;
        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(header[scheme.Length..].Trim()));
        return CryptographicOperations.FixedTimeEquals(presented, _digest);
    }
}
