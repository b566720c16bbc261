using System.Net;
using System.Text.Json;

namespace Broker.Core.Attestation.Internal;

/// <summary>
/// Reads trust material from a file or an HTTPS URL, bounded in size and time. It only ever
/// fetches URLs that policy named (or that an allow-listed issuer's discovery document named):
/// nothing in a presented proof can make it fetch anything.
/// </summary>
internal sealed class BundleFetcher
{
    /// <summary>Largest trust document read (a JWKS with hundreds of RSA keys is well under this).</summary>
    public const int MaxDocumentBytes = 1024 * 1024;

    private readonly HttpClient _http;
    private readonly TimeSpan _timeout;
    private readonly TimeProvider _time;

    public BundleFetcher(HttpClient http, TimeSpan timeout, TimeProvider time)
    {
        _http = http;
        _timeout = timeout;
        _time = time;
    }

    public async Task<byte[]> ReadFileAsync(string path)
    {
        using var timeout = new CancellationTokenSource(_timeout, _time);
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 4096, useAsync: true);
        return await ReadBoundedAsync(stream, timeout.Token);
    }

    public async Task<byte[]> GetHttpsAsync(Uri uri)
    {
        RequireHttps(uri);
        using var timeout = new CancellationTokenSource(_timeout, _time);
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        request.Headers.Accept.ParseAdd("application/json");
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);

        // Redirects are not followed by the client we configure; if a host's client does follow
        // them, a hop to plain HTTP is still refused here.
        if (response.RequestMessage?.RequestUri is { } final)
        {
            RequireHttps(final);
        }

        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new InvalidDataException($"{uri} answered HTTP {(int)response.StatusCode}");
        }

        if (response.Content.Headers.ContentLength > MaxDocumentBytes)
        {
            throw new InvalidDataException($"{uri} answered with more than {MaxDocumentBytes} bytes");
        }

        await using var stream = await response.Content.ReadAsStreamAsync(timeout.Token);
        return await ReadBoundedAsync(stream, timeout.Token);
    }

    /// <summary>OpenID Connect discovery: the issuer's metadata names its jwks_uri, which must be HTTPS.</summary>
    public async Task<byte[]> DiscoverAndGetJwksAsync(string issuer)
    {
        var issuerUri = new Uri(issuer, UriKind.Absolute);
        RequireHttps(issuerUri);
        var metadataUri = new Uri(issuer.TrimEnd('/') + "/.well-known/openid-configuration", UriKind.Absolute);
        var metadata = await GetHttpsAsync(metadataUri);

        string? jwksUri;
        string? statedIssuer;
        try
        {
            using var document = JsonDocument.Parse(metadata);
            var root = document.RootElement;
            statedIssuer = root.TryGetProperty("issuer", out var i) && i.ValueKind == JsonValueKind.String ? i.GetString() : null;
            jwksUri = root.TryGetProperty("jwks_uri", out var j) && j.ValueKind == JsonValueKind.String ? j.GetString() : null;
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{metadataUri} is not a JSON document", e);
        }

        // OpenID Connect Discovery 1.0 §4.3: the stated issuer must be identical to the one asked
        // for, or a compromised or confused metadata host could vouch for another issuer's keys.
        if (!string.Equals(statedIssuer, issuer, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"{metadataUri} states a different issuer");
        }

        if (!Uri.TryCreate(jwksUri, UriKind.Absolute, out var keysUri))
        {
            throw new InvalidDataException($"{metadataUri} has no absolute jwks_uri");
        }

        return await GetHttpsAsync(keysUri);
    }

    private static void RequireHttps(Uri uri)
    {
        if (!uri.IsAbsoluteUri || !string.Equals(uri.Scheme, Uri.UriSchemeHttps, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"trust material is only fetched over https, not from {uri.Scheme}");
        }
    }

    private static async Task<byte[]> ReadBoundedAsync(Stream stream, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await stream.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > MaxDocumentBytes)
            {
                throw new InvalidDataException($"trust document is larger than {MaxDocumentBytes} bytes");
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }
}
