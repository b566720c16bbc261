using Broker.Core.Errors;
using Broker.Core.Issuance;
using CsCheck;

namespace Broker.Core.Tests.Issuance;

/// <summary>Scope lists: each scope once, the first occurrence kept, request order unchanged; bad shapes refused whole.</summary>
public sealed class RequestValidatorTests
{
    [Fact]
    public void Scopes_are_kept_once_each_in_the_order_first_asked_for()
    {
        // A small alphabet, so most lists repeat something.
        var lists = Gen.Int[1, IssuanceOptions.MaxScopes].SelectMany(n => Gen.String[Gen.Char["abc"], 1, 2].Array[n]);
        lists.Sample(
            list =>
            {
                var expected = list.Distinct(StringComparer.Ordinal).ToArray();
                Assert.Equal(expected, RequestValidator.ValidateScopes(list));
            },
            iter: 400);
    }

    [Fact]
    public void A_list_without_repeats_comes_back_as_asked()
    {
        string[] scopes = ["repo:read", "tickets:read", "deploy:staging"];
        Assert.Equal(scopes, RequestValidator.ValidateScopes(scopes));
    }

    [Theory]
    [InlineData("repo:read", "bad scope")]
    [InlineData("", "repo:read")]
    [InlineData("repo:read", "quo\"te")]
    public void One_malformed_scope_refuses_the_list(string first, string second)
    {
        var refused = Assert.Throws<BrokerException>(() => RequestValidator.ValidateScopes([first, second, first]));
        Assert.Equal(BrokerErrors.ScopesInvalid, refused.Reason);
    }

    [Fact]
    public void More_scopes_than_allowed_are_refused_even_if_they_repeat()
    {
        var scopes = Enumerable.Repeat("repo:read", IssuanceOptions.MaxScopes + 1).ToArray();
        Assert.Equal(BrokerErrors.ScopesInvalid, Assert.Throws<BrokerException>(() => RequestValidator.ValidateScopes(scopes)).Reason);
    }
}
