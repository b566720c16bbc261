using Broker.Core.Policy;

namespace Broker.Core.Tests.Policy;

public sealed class WorkloadPatternTests
{
    private static WorkloadPattern Parse(string text)
    {
        Assert.True(WorkloadPattern.TryParse(text, out var pattern, out var error), error);
        return pattern!;
    }

    [Theory]
    [InlineData("spiffe://example.org/agents/deployer", "spiffe://example.org/agents/deployer", true)]
    [InlineData("spiffe://example.org/agents/deployer", "spiffe://example.org/agents/deployer/x", false)]
    [InlineData("spiffe://example.org/agents/deployer", "spiffe://example.org/agents/deploye", false)]
    [InlineData("spiffe://example.org/agents/deployer", "SPIFFE://example.org/agents/deployer", false)]
    public void A_literal_pattern_matches_only_that_exact_id(string pattern, string id, bool expected) =>
        Assert.Equal(expected, Parse(pattern).IsMatch(id));

    [Theory]
    [InlineData("spiffe://example.org/agents/a", true)]
    [InlineData("spiffe://example.org/agents/deployer-7", true)]
    [InlineData("spiffe://example.org/agents/", false)]
    [InlineData("spiffe://example.org/agents/a/b", false)]
    [InlineData("spiffe://example.org/agents", false)]
    public void A_star_matches_within_one_segment_and_never_crosses_a_slash(string id, bool expected) =>
        Assert.Equal(expected, Parse("spiffe://example.org/agents/*").IsMatch(id));

    [Fact]
    public void A_star_inside_a_segment_matches_the_rest_of_that_segment()
    {
        var pattern = Parse("spiffe://example.org/agents/deployer-*/worker");

        Assert.True(pattern.IsMatch("spiffe://example.org/agents/deployer-eu/worker"));
        Assert.False(pattern.IsMatch("spiffe://example.org/agents/deployer-eu/x/worker"));
        Assert.False(pattern.IsMatch("spiffe://example.org/agents/builder-eu/worker"));
    }

    [Theory]
    [InlineData("spiffe://example.org/ci/a", true)]
    [InlineData("spiffe://example.org/ci/a/b/c", true)]
    [InlineData("spiffe://example.org/ci", false)]
    [InlineData("spiffe://example.org/ci/", false)]
    [InlineData("spiffe://example.org/cix/a", false)]
    public void A_trailing_double_star_matches_any_deeper_path_but_not_the_prefix_itself(string id, bool expected) =>
        Assert.Equal(expected, Parse("spiffe://example.org/ci/**").IsMatch(id));

    [Fact]
    public void Dots_are_literal()
    {
        var pattern = Parse("spiffe://example.org/a.b");

        Assert.True(pattern.IsMatch("spiffe://example.org/a.b"));
        Assert.False(pattern.IsMatch("spiffe://exampleXorg/a.b"));
        Assert.False(pattern.IsMatch("spiffe://example.org/aXb"));
    }

    [Theory]
    [InlineData("k8s:ns(prod)+[x]|y^$?{2}\\d", "k8s:ns(prod)+[x]|y^$?{2}\\d", true)]
    [InlineData("k8s:ns(prod)+[x]|y^$?{2}\\d", "k8s:nsprodx", false)]
    [InlineData("k8s:a+", "k8s:aaa", false)]
    [InlineData("k8s:a?", "k8s:", false)]
    [InlineData("k8s:.*", "k8s:anything", false)]
    public void Regex_metacharacters_in_a_pattern_are_literal(string pattern, string id, bool expected) =>
        Assert.Equal(expected, Parse(pattern).IsMatch(id));

    [Fact]
    public void Oidc_subject_patterns_use_the_same_rules()
    {
        var pattern = Parse("k8s:system:serviceaccount:ops:*");

        Assert.True(pattern.IsMatch("k8s:system:serviceaccount:ops:triage"));
        Assert.False(pattern.IsMatch("k8s:system:serviceaccount:ops-admin:triage"));
        Assert.False(pattern.IsMatch("k8s:system:serviceaccount:ops:triage/extra"));
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("   ", "empty")]
    [InlineData("spiffe://example.org/**/x", "'**' is only allowed as the last path segment")]
    [InlineData("spiffe://example.org/a**", "'**' is only allowed as the last path segment")]
    public void Malformed_patterns_are_refused_with_a_reason(string text, string fragment)
    {
        Assert.False(WorkloadPattern.TryParse(text, out var pattern, out var error));
        Assert.Null(pattern);
        Assert.Contains(fragment, error, StringComparison.Ordinal);
    }
}
