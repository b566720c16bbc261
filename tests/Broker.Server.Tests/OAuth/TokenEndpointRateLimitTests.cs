using System.Net;
using System.Text.Json;
using Broker.Server.Tests.Infrastructure;

namespace Broker.Server.Tests.OAuth;

/// <summary>The token endpoint past a caller's refusal budget: 429, Retry-After, an RFC 6749-style error naming RATE_LIMITED.</summary>
public sealed class TokenEndpointRateLimitTests : IAsyncLifetime
{
    private OAuthScenario _oauth = null!;

    public async Task InitializeAsync() => _oauth = await OAuthScenario.StartAsync(settings: RefusalBudgetSettings.Of(2));

    public async Task DisposeAsync() => await _oauth.DisposeAsync();

    [Fact]
    public async Task Bad_assertions_past_the_budget_are_answered_429_slow_down_with_retry_after()
    {
        var answers = new List<(HttpStatusCode Status, string? RetryAfter, JsonElement Body)>();
        for (var i = 0; i < 4; i++)
        {
            using var content = new FormUrlEncodedContent(_oauth.Exchange(svid: "not.a.jwt").Where(p => p.Value is not null).Select(p => new KeyValuePair<string, string>(p.Key, p.Value!)));
            using var response = await _oauth.Http.PostAsync("/oauth2/token", content);
            answers.Add((response.StatusCode, response.Headers.RetryAfter?.Delta?.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture), JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone()));
        }

        Assert.All(answers.Take(2), a =>
        {
            Assert.Equal(HttpStatusCode.BadRequest, a.Status);
            Assert.Null(a.RetryAfter);
            Assert.StartsWith("ATTESTATION_", a.Body.GetProperty("broker_reason").GetString(), StringComparison.Ordinal);
        });
        Assert.All(answers.Skip(2), a =>
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, a.Status);
            Assert.True(double.Parse(a.RetryAfter!, System.Globalization.CultureInfo.InvariantCulture) >= 1);
            Assert.Equal("slow_down", a.Body.GetProperty("error").GetString());
            Assert.Equal("RATE_LIMITED", a.Body.GetProperty("broker_reason").GetString());
            Assert.StartsWith("RATE_LIMITED: ", a.Body.GetProperty("error_description").GetString(), StringComparison.Ordinal);
        });

        // From the same address, a new proof is refused unchecked until the budget refills
        // (CheckProofsPastBudget below is the setting for callers behind one proxy address).
        var unverified = await _oauth.TokenAsync(_oauth.Exchange());
        Assert.Equal(HttpStatusCode.TooManyRequests, unverified.Status);
    }

    [Fact]
    public async Task With_CheckProofsPastBudget_a_good_agent_at_a_spent_address_still_gets_its_token()
    {
        var settings = RefusalBudgetSettings.Of(2);
        settings["Broker:RateLimit:CheckProofsPastBudget"] = "true";
        await using var oauth = await OAuthScenario.StartAsync(settings: settings);
        for (var i = 0; i < 4; i++)
        {
            var refused = await oauth.TokenAsync(oauth.Exchange(svid: "not.a.jwt"));
            Assert.Equal(i < 2 ? HttpStatusCode.BadRequest : HttpStatusCode.TooManyRequests, refused.Status);
        }

        // A good agent is charged nothing for another caller's refusals, even from the same address.
        var issued = await oauth.TokenAsync(oauth.Exchange());
        Assert.Equal(HttpStatusCode.OK, issued.Status);
    }
}
