using Broker.Core.Policy;
using Broker.Core.Tests.Policy;
using CsCheck;

namespace Broker.Core.Tests.Properties;

/// <summary>The policy reader on mutated policies: errors, never exceptions; the same answer every time.</summary>
public sealed class PolicyReaderProperties : IDisposable
{
    private readonly PolicyTestDirectory _dir = new();

    public PolicyReaderProperties()
    {
        _dir.Touch("bundles/example.org.jwks");
        _dir.Touch("bundles/example.org.pem");
        _dir.Touch("bundles/k8s.jwks");
    }

    public void Dispose() => _dir.Dispose();

    private static Gen<string> LineEdits(string text)
    {
        var lines = text.Split('\n');
        return
            from at in Gen.Int[0, lines.Length - 1]
            from other in Gen.Int[0, lines.Length - 1]
            from kind in Gen.Int[0, 2]
            select string.Join('\n', kind switch
            {
                0 => lines.Where((_, i) => i != at),
                1 => lines.Take(at + 1).Append(lines[other]).Concat(lines.Skip(at + 1)),
                _ => lines.Select((l, i) => i == at ? "  " + l : l),
            });
    }

    [Fact]
    public void Mutated_policies_load_or_are_refused_with_located_errors_and_never_throw()
    {
        var valid = PolicyLoaderTests.FullPolicy;
        Assert.True(PolicyLoader.Parse(valid, "inline", _dir.Path).Succeeded);

        Gen.OneOf(Mutations.Of(valid), LineEdits(valid)).Sample(
            text =>
            {
                var first = PolicyLoader.Parse(text, "inline", _dir.Path);
                var second = PolicyLoader.Parse(text, "inline", _dir.Path);

                Assert.True(first.Succeeded != first.Errors.Count > 0, "a policy xor errors");
                Assert.All(first.Errors, e => Assert.True(e.Line >= 1 && !string.IsNullOrWhiteSpace(e.Message), e.ToString()));
                Assert.Equal(first.Errors.Select(e => e.ToString()), second.Errors.Select(e => e.ToString()));
                Assert.Equal(first.Policy?.Digest, second.Policy?.Digest);
            },
            iter: Mutations.Iterations,
            threads: 1);
    }

    [Fact]
    public void Random_text_is_refused_with_errors_and_never_throws()
    {
        Gen.String[Gen.Char["version: 1\n-[]{}&*!|>'\"%@`#,?:abc\t"], 0, 200].Sample(
            text =>
            {
                var result = PolicyLoader.Parse(text, "inline", _dir.Path);
                Assert.False(result.Succeeded);
                Assert.NotEmpty(result.Errors);
            },
            iter: Mutations.Iterations,
            threads: 1);
    }
}
