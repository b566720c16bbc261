using Broker.Core.Attestation;

namespace Broker.Core.Tests.Attestation;

public sealed class SpiffeIdTests
{
    [Theory]
    [InlineData("spiffe://example.org/agents/planner", "example.org", "/agents/planner")]
    [InlineData("spiffe://a-b_c.0/X.y-z_9", "a-b_c.0", "/X.y-z_9")]
    [InlineData("spiffe://example.org/a/b/c/d", "example.org", "/a/b/c/d")]
    [InlineData("spiffe://example.org/...", "example.org", "/...")]
    public void Valid_workload_ids_parse_into_trust_domain_and_path(string text, string trustDomain, string path)
    {
        Assert.True(SpiffeId.TryParse(text, out var id, out var error), error);
        Assert.Equal(trustDomain, id.TrustDomain);
        Assert.Equal(path, id.Path);
        Assert.Equal(text, id.ToString());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("SPIFFE://example.org/a")]
    [InlineData("spiffe:/example.org/a")]
    [InlineData("spiffe:example.org/a")]
    [InlineData("spiffe://")]
    [InlineData("spiffe:///a")]
    [InlineData("spiffe://EXAMPLE.org/a")]
    [InlineData("spiffe://example.org:8080/a")]
    [InlineData("spiffe://user:pw@example.org/a")]
    [InlineData("spiffe://example.org/a?b=c")]
    [InlineData("spiffe://example.org?b=c")]
    [InlineData("spiffe://example.org/a#frag")]
    [InlineData("spiffe://example.org/a/../b")]
    [InlineData("spiffe://example.org/..")]
    [InlineData("spiffe://example.org/./a")]
    [InlineData("spiffe://example.org")]
    [InlineData("spiffe://example.org/")]
    [InlineData("spiffe://example.org/a/")]
    [InlineData("spiffe://example.org//a")]
    [InlineData("spiffe://example.org/a%2Fb")]
    [InlineData("spiffe://example.org/a b")]
    [InlineData("spiffe://example.org/ä")]
    [InlineData("spiffe://exa mple.org/a")]
    [InlineData(" spiffe://example.org/a")]
    public void Malformed_ids_are_refused_with_a_reason(string? text)
    {
        Assert.False(SpiffeId.TryParse(text, out var id, out var error));
        Assert.Null(id);
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void Ids_longer_than_2048_characters_are_refused()
    {
        var prefix = "spiffe://example.org/";
        Assert.True(SpiffeId.TryParse(prefix + new string('a', SpiffeId.MaxLength - prefix.Length), out _));
        Assert.False(SpiffeId.TryParse(prefix + new string('a', SpiffeId.MaxLength - prefix.Length + 1), out _));
    }

    [Fact]
    public void Trust_domain_longer_than_255_characters_is_refused()
    {
        Assert.True(SpiffeId.TryParse($"spiffe://{new string('a', 255)}/x", out _));
        Assert.False(SpiffeId.TryParse($"spiffe://{new string('a', 256)}/x", out _));
    }

    [Fact]
    public void Equal_ids_compare_equal_ordinally()
    {
        Assert.True(SpiffeId.TryParse("spiffe://example.org/a", out var a));
        Assert.True(SpiffeId.TryParse("spiffe://example.org/a", out var b));
        Assert.True(SpiffeId.TryParse("spiffe://example.org/A", out var c));

        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, c);
    }

    [Theory]
    [InlineData("example.org", true)]
    [InlineData("Example.org", false)]
    [InlineData("example.org:443", false)]
    [InlineData("", false)]
    [InlineData(null, false)]
    public void Trust_domain_names_are_validated(string? name, bool valid)
    {
        Assert.Equal(valid, SpiffeId.IsValidTrustDomain(name));
    }
}
