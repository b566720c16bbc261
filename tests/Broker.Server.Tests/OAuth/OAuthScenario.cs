using System.Net;
using System.Text.Json;
using Broker.Core.Policy;
using Broker.Server.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Broker.Server.Tests.OAuth;

/// <summary>
/// A broker node whose policy gives the planners a <c>default_phase</c>, gates
/// <c>deploy:prod</c> behind an approver, and has a second rule (strict) without a default
/// phase; and a plain <see cref="HttpClient"/> speaking form-encoded OAuth to its real Kestrel.
/// </summary>
public sealed class OAuthScenario : IAsyncDisposable
{
    public const string TokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange";
    public const string JwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    public const string JwtType = "urn:ietf:params:oauth:token-type:jwt";

    private OAuthScenario(BrokerScenario broker)
    {
        Broker = broker;
        Http = new HttpClient { BaseAddress = new Uri(broker.Host.HttpAddress) };
    }

    public BrokerScenario Broker { get; }

    public HttpClient Http { get; }

    public static async Task<OAuthScenario> StartAsync(string? redisConfiguration = null, string? redisPrefix = null, IReadOnlyDictionary<string, string?>? settings = null)
    {
        var broker = await BrokerScenario.StartAsync(redisConfiguration, redisPrefix: redisPrefix, settings: settings);
        var provider = broker.Host.Services.GetRequiredService<IPolicyProvider>();
        var before = provider.Current.Digest;
        var policy = (await File.ReadAllTextAsync(broker.PolicyPath))
            .Replace("match: spiffe://example.org/agents/*", "match: spiffe://example.org/agents/*\n    default_phase: planning", StringComparison.Ordinal)
            .Replace("scopes: [repo:read, deploy:staging]", "scopes: [repo:read, deploy:staging, deploy:prod]", StringComparison.Ordinal)
            .TrimEnd() + "\n" + $"""
                    gated_scopes:
                      - scopes: [deploy:prod]
                        approvers: [approver]
              - name: strict
                match: spiffe://example.org/strict/*
                phases:
                  planning:
                    scopes: [repo:read]
                    audiences: [{BrokerScenario.ResourceAudience}]
                    max_ttl: 10m

            """;
        await File.WriteAllTextAsync(broker.PolicyPath, policy);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (provider.Current.Digest == before)
        {
            await Task.Delay(20, deadline.Token);
        }

        Assert.Equal(global::Broker.Core.TaskPhase.Planning, provider.Current.Agents[0].DefaultPhase);
        return new OAuthScenario(broker);
    }

    /// <summary>A token-exchange form for the planner's JWT-SVID, with what the test adds or overrides (a null value removes).</summary>
    public Dictionary<string, string?> Exchange(string? svid = null, string task = "task-1", string phase = "planning", string scope = "repo:read") => new()
    {
        ["grant_type"] = TokenExchange,
        ["subject_token"] = svid ?? Broker.Svid(),
        ["subject_token_type"] = JwtType,
        ["resource"] = BrokerScenario.ResourceAudience,
        ["scope"] = scope,
        ["authorization_details"] = Details(task, phase),
    };

    public static string Details(string task, string phase, string? justification = null) =>
        JsonSerializer.Serialize(new[] { justification is null ? new Dictionary<string, string> { ["type"] = "agent_task", ["task_id"] = task, ["phase"] = phase } : new Dictionary<string, string> { ["type"] = "agent_task", ["task_id"] = task, ["phase"] = phase, ["justification"] = justification } });

    public Task<OAuthAnswer> PostAsync(string path, IEnumerable<KeyValuePair<string, string?>> form) => PostAsync(Http, path, form, []);

    /// <summary>Posts <paramref name="form"/> through <paramref name="http"/> (this node or a peer) with <paramref name="headers"/> (e.g. DPoP proofs, repeatable).</summary>
    public static async Task<OAuthAnswer> PostAsync(HttpClient http, string path, IEnumerable<KeyValuePair<string, string?>> form, IEnumerable<(string Name, string Value)> headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path)
        {
            Content = new FormUrlEncodedContent(form.Where(p => p.Value is not null).Select(p => new KeyValuePair<string, string>(p.Key, p.Value!))),
        };
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        using var response = await http.SendAsync(request);
        return await OAuthAnswer.ReadAsync(response);
    }

    public Task<OAuthAnswer> TokenAsync(IEnumerable<KeyValuePair<string, string?>> form) => PostAsync("/oauth2/token", form);

    /// <summary>The token endpoint as the metadata names it: what a DPoP proof's <c>htu</c> must be at every node.</summary>
    public string TokenEndpoint => Broker.Host.Issuer.TrimEnd('/') + "/oauth2/token";

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Broker.DisposeAsync();
    }
}

/// <summary>One answer from an OAuth endpoint: status, the headers that matter, the JSON body.</summary>
public sealed record OAuthAnswer(HttpStatusCode Status, string? CacheControl, string? ContentType, JsonElement Body)
{
    /// <summary>The <c>DPoP-Nonce</c> header (RFC 9449 section 8), when sent.</summary>
    public string? DpopNonce { get; init; }

    public static async Task<OAuthAnswer> ReadAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        var body = text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
        return new OAuthAnswer(response.StatusCode, response.Headers.CacheControl?.ToString(), response.Content.Headers.ContentType?.MediaType, body)
        {
            DpopNonce = response.Headers.TryGetValues("DPoP-Nonce", out var nonces) ? nonces.Single() : null,
        };
    }

    public string? this[string member] => Body.ValueKind == JsonValueKind.Object && Body.TryGetProperty(member, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    public string? Error => this["error"];

    public string? Reason => this["broker_reason"];
}
