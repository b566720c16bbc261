using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Server.Tests.Infrastructure;

/// <summary>
/// A Shared Signals receiver as a plain HTTP client: it manages streams at a broker node with
/// its resource-server token and polls them (RFC 8936), and verifies SETs against the broker's
/// published JWKS with stock IdentityModel, as any receiver would.
/// </summary>
public sealed class SsfReceiverClient(string nodeAddress, Func<string?> token) : IDisposable
{
    public const string SessionRevoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
    public const string Verification = "https://schemas.openid.net/secevent/ssf/event-type/verification";
    public const string Poll = "urn:ietf:rfc:8936";
    public const string Push = "urn:ietf:rfc:8935";

    private readonly HttpClient _http = new() { BaseAddress = new Uri(nodeAddress), Timeout = TimeSpan.FromSeconds(60) };

    public Task<SsfAnswer> CreateAsync(object body) => SendAsync(HttpMethod.Post, "/ssf/streams", body);

    public Task<SsfAnswer> CreatePollStreamAsync() => CreateAsync(new { delivery = new { method = Poll }, events_requested = new[] { SessionRevoked } });

    public Task<SsfAnswer> GetAsync(string? streamId = null) => SendAsync(HttpMethod.Get, "/ssf/streams" + (streamId is null ? "" : "?stream_id=" + Uri.EscapeDataString(streamId)), null);

    public Task<SsfAnswer> DeleteAsync(string streamId) => SendAsync(HttpMethod.Delete, "/ssf/streams?stream_id=" + Uri.EscapeDataString(streamId), null);

    public Task<SsfAnswer> PatchAsync(object body) => SendAsync(HttpMethod.Patch, "/ssf/streams", body);

    public Task<SsfAnswer> VerifyAsync(string streamId, string? state) => SendAsync(HttpMethod.Post, "/ssf/verify", new { stream_id = streamId, state });

    /// <summary>One RFC 8936 poll of <paramref name="streamId"/>.</summary>
    public Task<SsfAnswer> PollAsync(string streamId, IEnumerable<string>? ack = null, int? maxEvents = null, bool returnImmediately = true)
    {
        var body = new Dictionary<string, object> { ["returnImmediately"] = returnImmediately, ["ack"] = (ack ?? []).ToArray() };
        if (maxEvents is not null)
        {
            body["maxEvents"] = maxEvents.Value;
        }

        return SendAsync(HttpMethod.Post, "/ssf/poll/" + streamId, body);
    }

    /// <summary>Polls (acknowledging what it got) until <paramref name="enough"/> SETs arrived or the bound passed.</summary>
    public async Task<List<(string Jti, string Set)>> CollectAsync(string streamId, int enough, TimeSpan? bound = null)
    {
        var got = new List<(string, string)>();
        var ack = new List<string>();
        var deadline = DateTime.UtcNow + (bound ?? TimeSpan.FromSeconds(20));
        while (got.Count < enough && DateTime.UtcNow < deadline)
        {
            var answer = await PollAsync(streamId, ack, returnImmediately: false);
            Assert.Equal(HttpStatusCode.OK, answer.Status);
            ack = [];
            foreach (var set in answer.Body.GetProperty("sets").EnumerateObject())
            {
                got.Add((set.Name, set.Value.GetString()!));
                ack.Add(set.Name);
            }
        }

        if (ack.Count > 0)
        {
            Assert.Equal(HttpStatusCode.OK, (await PollAsync(streamId, ack, maxEvents: 0)).Status);
        }

        return got;
    }

    public async Task<SsfAnswer> SendAsync(HttpMethod method, string path, object? body, string? contentType = "application/json")
    {
        using var request = new HttpRequestMessage(method, path);
        if (token() is { } bearer)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        if (body is not null)
        {
            request.Content = new StringContent(body as string ?? JsonSerializer.Serialize(body), Encoding.UTF8);
            request.Content.Headers.ContentType = contentType is null ? null : new MediaTypeHeaderValue(contentType);
        }

        using var response = await _http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return new SsfAnswer(response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone(), response.Headers.WwwAuthenticate.ToString());
    }

    /// <summary>Verifies <paramref name="set"/> against the JWKS at <paramref name="issuer"/> and returns its payload.</summary>
    public static async Task<JsonElement> VerifyAsync(string issuer, string audience, string set)
    {
        using var http = new HttpClient();
        var jwks = new JsonWebKeySet(await http.GetStringAsync(issuer.TrimEnd('/') + "/.well-known/jwks.json"));
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(set, new TokenValidationParameters
        {
            ValidIssuer = issuer,
            ValidAudience = audience,
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidTypes = ["secevent+jwt"],
            RequireExpirationTime = false,
            ValidateLifetime = false,
        });
        Assert.True(result.IsValid, result.Exception?.Message);
        var payload = ((JsonWebToken)result.SecurityToken).EncodedPayload;
        return JsonDocument.Parse(Base64UrlEncoder.Decode(payload)).RootElement.Clone();
    }

    public void Dispose() => _http.Dispose();
}

/// <summary>One answer from a transmitter endpoint.</summary>
public sealed record SsfAnswer(HttpStatusCode Status, JsonElement Body, string WwwAuthenticate)
{
    public string? this[string member] => Body.ValueKind == JsonValueKind.Object && Body.TryGetProperty(member, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    public string? Err => this["err"];

    public string StreamId => this["stream_id"] ?? throw new InvalidOperationException("No stream_id in " + Body);
}
