using System.Text.RegularExpressions;
using Broker.Core.Attestation;
using CsCheck;

namespace Broker.Core.Tests.Properties;

/// <summary>The SPIFFE ID parser against an independent statement of the SPIFFE-ID spec, on random and mutated input.</summary>
public sealed partial class SpiffeIdProperties
{
    // SPIFFE-ID section 2: scheme, a trust domain of [a-z0-9._-], a path of "/"-segments of [a-zA-Z0-9._-]
    // that are neither "." nor ".."; Broker requires a path (a workload id).
    [GeneratedRegex("^spiffe://[a-z0-9._-]{1,255}(/(?!\\.{1,2}(/|$))[a-zA-Z0-9._-]+)+$")]
    private static partial Regex Strict();

    private static readonly Gen<string> Candidates = Gen.OneOf(
        Gen.String[Gen.Char["spife:/.-_aZ09?#%@"], 0, 40],
        Gen.Select(
            Gen.String[Gen.Char["abcxyz019.-_A:@%"], 0, 20],
            Gen.String[Gen.Char["abcXYZ09.-_/?#%~ "], 0, 30],
            (domain, path) => "spiffe://" + domain + path),
        Mutations.Of("spiffe://example.org/agents/planner"));

    [Fact]
    public void Parsing_accepts_exactly_what_the_spec_allows_and_never_throws()
    {
        Candidates.Sample(
            text =>
            {
                var accepted = SpiffeId.TryParse(text, out var id, out var error);
                Assert.Equal(Strict().IsMatch(text), accepted);
                Assert.True(accepted ? error is null : !string.IsNullOrEmpty(error));
            },
            iter: Mutations.Iterations * 5,
            threads: 1);
    }

    [Fact]
    public void An_accepted_id_round_trips_through_its_parts()
    {
        var valid =
            from domain in Gen.String[Gen.Char["abcz09.-_"], 1, 30]
            from segments in Gen.String[Gen.Char["aZ09-_"], 1, 12].Array[1, 5]
            select "spiffe://" + domain + "/" + string.Join('/', segments);

        valid.Sample(
            text =>
            {
                Assert.True(SpiffeId.TryParse(text, out var id, out var error), error);
                Assert.Equal(text, id.ToString());
                Assert.Equal(text, "spiffe://" + id.TrustDomain + id.Path);
                Assert.True(SpiffeId.TryParse(id.ToString(), out var again, out _));
                Assert.Equal(id, again);
            },
            iter: Mutations.Iterations,
            threads: 1);
    }
}
