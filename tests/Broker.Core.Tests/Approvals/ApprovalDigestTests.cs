using System.Text.Json.Nodes;
using Broker.Core;
using Broker.Core.Approvals;

namespace Broker.Core.Tests.Approvals;

/// <summary>
/// The approval digest can be recomputed outside .NET: an independent RFC 8785 canonicalizer in
/// a few lines of JavaScript (run by Node, no packages) must give the same digest.
/// </summary>
public sealed class ApprovalDigestTests
{
    // Canonical JSON per RFC 8785 for the value types Broker digests: JSON.stringify writes
    // strings and integers as JCS requires; members are sorted by UTF-16 code units.
    private const string NodeDigest = """
        const crypto = require('crypto');
        const jcs = v => v === null || typeof v !== 'object' ? JSON.stringify(v)
          : Array.isArray(v) ? '[' + v.map(jcs).join(',') + ']'
          : '{' + Object.keys(v).sort().map(k => JSON.stringify(k) + ':' + jcs(v[k])).join(',') + '}';
        const r = JSON.parse(require('fs').readFileSync(0, 'utf8'));
        const request = { v: 'broker.approval.v2', agent: r.agent, task: r.task, phase: r.phase,
          scopes: [...new Set(r.scopes)].sort(), audience: r.audience, ttl_seconds: r.ttl_seconds,
          risk: r.risk, justification: r.justification || null };
        process.stdout.write('sha256:' + crypto.createHash('sha256').update(jcs(request), 'utf8').digest('hex'));
        """;

    public static TheoryData<string?> Justifications => new()
    {
        "roll back \"release\" 1.2 & <restart> the 'api' + workers",
        "Überprüfung: café naïve 日本語 emoji 🚀 — “quotes”",
        "tab\there, newline\nthere, bell\u0007, DEL\u007f, U+2028\u2028",
        null,
        "",
    };

    [Theory]
    [MemberData(nameof(Justifications))]
    public async Task An_independent_rfc8785_implementation_recomputes_the_digest(string? justification)
    {
        string[] scopes = ["deploy:prod", "repo:read", "Deploy:prod", "deploy:prod", "é:scope"];
        var expected = ApprovalRequest.ComputeDigest("spiffe://example.org/agents/déploy", "task <1> & 'two'", TaskPhase.Execution, scopes, "https://api.example.org/?a=1&b=2", 300, "low", justification);

        var input = new JsonObject
        {
            ["agent"] = "spiffe://example.org/agents/déploy",
            ["task"] = "task <1> & 'two'",
            ["phase"] = "execution",
            ["scopes"] = new JsonArray([.. scopes.Select(s => (JsonNode)JsonValue.Create(s)!)]),
            ["audience"] = "https://api.example.org/?a=1&b=2",
            ["ttl_seconds"] = 300,
            ["risk"] = "low",
            ["justification"] = justification,
        };

        Assert.Equal(expected, await RunNodeAsync(NodeDigest, input.ToJsonString()));
    }

    [Fact]
    public void Canonical_form_escapes_only_what_rfc8785_escapes_and_sorts_members()
    {
        var value = new JsonObject { ["b"] = "\" & < ' + é\n\u001f", ["a"] = new JsonArray(1, true, null), ["\u00e9"] = 2, ["Z"] = "😀" };

        var text = System.Text.Encoding.UTF8.GetString(CanonicalJson.Serialize(value));

        Assert.Equal("{\"Z\":\"😀\",\"a\":[1,true,null],\"b\":\"\\\" & < ' + é\\n\\u001f\",\"é\":2}", text);
    }

    [Fact]
    public void Values_that_have_no_canonical_form_here_are_refused()
    {
        Assert.Throws<ArgumentException>(() => CanonicalJson.Serialize(JsonValue.Create(1.5)));
        Assert.Throws<ArgumentException>(() => CanonicalJson.Serialize(JsonValue.Create("lone \ud800 surrogate")));
    }

    private static async Task<string> RunNodeAsync(string script, string stdin)
    {
        var run = await Broker.Testing.NodeProcess.RunAsync(["-e", script], stdin: stdin, timeout: TimeSpan.FromSeconds(30));
        Assert.True(run.ExitCode == 0, run.Error);
        return run.Output;
    }
}
