using System.Text.Json;
using Broker.Cli.Commands;
using Broker.V1;
using Google.Protobuf.WellKnownTypes;

namespace Broker.Client.Tests;

/// <summary>How revoke, revocations list and introspect print what the broker answered.</summary>
public sealed class RevocationOutputTests
{
    private static readonly DateTimeOffset RevokedAt = DateTimeOffset.Parse("2030-01-01T10:42:07Z", System.Globalization.CultureInfo.InvariantCulture);

    private static readonly Broker.V1.Revocation TaskRevocation = new()
    {
        Id = "1893494527000-0",
        Selector = new RevocationSelector { TaskId = "incident-7" },
        Actor = "operator:alice",
        Reason = "INC-7: tool chaining\noutside plan",
        RevokedAt = Timestamp.FromDateTimeOffset(RevokedAt),
        ExpiresAt = Timestamp.FromDateTimeOffset(RevokedAt.AddHours(1).AddSeconds(30)),
    };

    private static readonly Broker.V1.Revocation BeforeRevocation = new()
    {
        Id = "1893494528000-0",
        Selector = new RevocationSelector
        {
            IssuedBefore = new IssuedBeforeTarget { Time = Timestamp.FromDateTimeOffset(RevokedAt.AddMinutes(-1)), Agent = "spiffe://example.org/agents/a" },
        },
        Actor = "broker",
        Reason = "epoch restored",
        RevokedAt = Timestamp.FromDateTimeOffset(RevokedAt),
        ExpiresAt = Timestamp.FromDateTimeOffset(RevokedAt.AddHours(1)),
    };

    [Theory]
    [MemberData(nameof(Selectors))]
    public void Selectors_read_like_the_command_that_made_them(RevocationSelector selector, string expected) =>
        Assert.Equal(expected, RevocationOutput.Describe(selector));

    public static TheoryData<RevocationSelector, string> Selectors() => new()
    {
        { new RevocationSelector { TokenId = "jti-1" }, "token jti-1" },
        { new RevocationSelector { TaskId = "incident-7" }, "task incident-7" },
        { new RevocationSelector { TaskPhase = new TaskPhaseTarget { TaskId = "incident-7", Phase = Phase.Execution } }, "phase incident-7/execution" },
        { new RevocationSelector { Agent = "spiffe://example.org/agents/a" }, "agent spiffe://example.org/agents/a" },
        { new RevocationSelector { TrustDomain = "example.org" }, "domain example.org" },
        { new RevocationSelector { IssuedBefore = new IssuedBeforeTarget { Time = Timestamp.FromDateTimeOffset(RevokedAt) } }, "before 2030-01-01T10:42:07Z" },
    };

    [Fact]
    public void Confirmation_names_what_was_revoked_its_id_and_the_bound()
    {
        var output = new StringWriter();

        RevocationOutput.WriteConfirmations(output, [TaskRevocation]);

        Assert.Equal("revoked task incident-7 (id 1893494527000-0) — in force on every node within the revocation bound\n", output.ToString().ReplaceLineEndings("\n"));
    }

    [Fact]
    public void Table_has_aligned_columns_and_one_line_per_revocation()
    {
        var output = new StringWriter();

        RevocationOutput.WriteTable(output, [TaskRevocation, BeforeRevocation]);

        var lines = output.ToString().ReplaceLineEndings("\n").TrimEnd('\n').Split('\n');
        Assert.Equal(3, lines.Length);
        // Columns are as wide as their widest cell plus two spaces: ID 15, SELECTOR 63, ACTOR 14, times 20.
        Assert.Equal("ID".PadRight(17) + "SELECTOR".PadRight(65) + "ACTOR".PadRight(16) + "REVOKED_AT".PadRight(22) + "EXPIRES_AT".PadRight(22) + "REASON", lines[0]);
        Assert.Equal(
            "1893494527000-0  " + "task incident-7".PadRight(65) + "operator:alice  2030-01-01T10:42:07Z  2030-01-01T11:42:37Z  INC-7: tool chaining outside plan",
            lines[1]);
        Assert.StartsWith("1893494528000-0  before 2030-01-01T10:41:07Z agent spiffe://example.org/agents/a  broker          2030-01-01T10:42:07Z", lines[2], StringComparison.Ordinal);
    }

    [Fact]
    public void An_empty_list_says_so()
    {
        var output = new StringWriter();

        RevocationOutput.WriteTable(output, []);

        Assert.Equal("no revocations in force\n", output.ToString().ReplaceLineEndings("\n"));
    }

    [Fact]
    public void Json_is_one_object_with_typed_selectors_and_utc_times()
    {
        var output = new StringWriter();

        RevocationOutput.WriteJson(output, [TaskRevocation, BeforeRevocation]);

        var revocations = JsonDocument.Parse(output.ToString()).RootElement.GetProperty("revocations");
        Assert.Equal(2, revocations.GetArrayLength());
        var task = revocations[0];
        Assert.Equal(["id", "selector", "actor", "reason", "revoked_at", "expires_at"], task.EnumerateObject().Select(p => p.Name));
        Assert.Equal("1893494527000-0", task.GetProperty("id").GetString());
        Assert.Equal("task", task.GetProperty("selector").GetProperty("type").GetString());
        Assert.Equal("incident-7", task.GetProperty("selector").GetProperty("task_id").GetString());
        Assert.Equal("operator:alice", task.GetProperty("actor").GetString());
        Assert.Equal("INC-7: tool chaining\noutside plan", task.GetProperty("reason").GetString());
        Assert.Equal("2030-01-01T10:42:07Z", task.GetProperty("revoked_at").GetString());
        Assert.Equal("2030-01-01T11:42:37Z", task.GetProperty("expires_at").GetString());
        var before = revocations[1].GetProperty("selector");
        Assert.Equal("before", before.GetProperty("type").GetString());
        Assert.Equal("2030-01-01T10:41:07Z", before.GetProperty("time").GetString());
        Assert.Equal("spiffe://example.org/agents/a", before.GetProperty("agent").GetString());
    }

    [Fact]
    public void Restore_epoch_json_carries_the_epoch_and_its_cutoff()
    {
        var output = new StringWriter();

        RevocationOutput.WriteJson(output, new RestoreRevocationEpochResponse { Epoch = "e-2", Cutoff = BeforeRevocation });

        var root = JsonDocument.Parse(output.ToString()).RootElement;
        Assert.Equal("e-2", root.GetProperty("epoch").GetString());
        Assert.Equal("before", root.GetProperty("cutoff").GetProperty("selector").GetProperty("type").GetString());
    }

    [Fact]
    public void Introspection_table_says_inactive_and_why_then_what_the_token_was()
    {
        var output = new StringWriter();
        var response = new IntrospectResponse
        {
            Active = false,
            InactiveReason = "revoked",
            TokenId = "jti-1",
            Subject = "spiffe://dev.local/agents/demo",
            Audience = "https://api.dev.local",
            TaskId = "incident-7",
            Phase = Phase.Planning,
            Scopes = { "repo:read", "tickets:read" },
            ExpiresAt = Timestamp.FromDateTimeOffset(RevokedAt.AddMinutes(5)),
        };

        RevocationOutput.WriteIntrospectionTable(output, response, RevokedAt);

        Assert.Equal(
            """
            active      no — revoked: a revocation in force matches this token
            token_id    jti-1
            subject     spiffe://dev.local/agents/demo
            audience    https://api.dev.local
            task        incident-7
            phase       planning
            scopes      repo:read tickets:read
            expires_at  2030-01-01T10:47:07Z (in 5m)

            """.ReplaceLineEndings("\n"),
            output.ToString().ReplaceLineEndings("\n"));
    }

    [Fact]
    public void Introspection_of_garbage_prints_only_the_verdict()
    {
        var output = new StringWriter();

        RevocationOutput.WriteIntrospectionTable(output, new IntrospectResponse { Active = false, InactiveReason = "malformed" }, RevokedAt);

        Assert.Equal("active  no — malformed: not a Broker access token\n", output.ToString().ReplaceLineEndings("\n"));
    }

    [Fact]
    public void Introspection_json_has_active_reason_and_claims()
    {
        var output = new StringWriter();

        RevocationOutput.WriteIntrospectionJson(output, new IntrospectResponse
        {
            Active = true,
            TokenId = "jti-1",
            Subject = "spiffe://dev.local/agents/demo",
            TaskId = "incident-7",
            Phase = Phase.Execution,
            Scopes = { "deploy:staging" },
            ExpiresAt = Timestamp.FromDateTimeOffset(RevokedAt),
        });

        var root = JsonDocument.Parse(output.ToString()).RootElement;
        Assert.True(root.GetProperty("active").GetBoolean());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("inactive_reason").ValueKind);
        Assert.Equal("execution", root.GetProperty("phase").GetString());
        Assert.Equal(["deploy:staging"], root.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));
        Assert.Equal("2030-01-01T10:42:07Z", root.GetProperty("expires_at").GetString());
    }
}
