using System.Globalization;
using System.Text.Json;
using Broker.V1;
using Google.Protobuf.WellKnownTypes;
using WireRevocation = Broker.V1.Revocation;

namespace Broker.Cli.Commands;

/// <summary>How revocations and introspection answers are printed: columns for people, JSON for scripts.</summary>
internal static class RevocationOutput
{
    public const string InForce = "in force on every node within the revocation bound";

    /// <summary><c>task incident-7</c>, <c>phase incident-7/execution</c>, <c>before 2030-01-01T10:42:00Z agent spiffe://...</c>.</summary>
    public static string Describe(RevocationSelector? selector) => selector?.TargetCase switch
    {
        RevocationSelector.TargetOneofCase.TokenId => $"token {selector.TokenId}",
        RevocationSelector.TargetOneofCase.TaskId => $"task {selector.TaskId}",
        RevocationSelector.TargetOneofCase.TaskPhase => $"phase {selector.TaskPhase.TaskId}/{IssueCommand.PhaseName(selector.TaskPhase.Phase)}",
        RevocationSelector.TargetOneofCase.Agent => $"agent {selector.Agent}",
        RevocationSelector.TargetOneofCase.TrustDomain => $"domain {selector.TrustDomain}",
        RevocationSelector.TargetOneofCase.IssuedBefore => string.IsNullOrEmpty(selector.IssuedBefore.Agent)
            ? $"before {Time(selector.IssuedBefore.Time)}"
            : $"before {Time(selector.IssuedBefore.Time)} agent {selector.IssuedBefore.Agent}",
        _ => "(unknown selector)",
    };

    /// <summary>One line per revocation: <c>revoked task incident-7 (id 1764...-0) — in force on every node within the revocation bound</c>.</summary>
    public static void WriteConfirmations(TextWriter output, IEnumerable<WireRevocation> revocations)
    {
        foreach (var revocation in revocations)
        {
            output.WriteLine($"revoked {Describe(revocation.Selector)} (id {revocation.Id}) — {InForce}");
        }
    }

    /// <summary>An aligned table: ID, SELECTOR, ACTOR, REVOKED_AT, EXPIRES_AT, REASON.</summary>
    public static void WriteTable(TextWriter output, IReadOnlyCollection<WireRevocation> revocations, bool colour = false)
    {
        if (revocations.Count == 0)
        {
            output.WriteLine("no revocations in force");
            return;
        }

        OutputFormat.WriteColumns(
            output,
            ["ID", "SELECTOR", "ACTOR", "REVOKED_AT", "EXPIRES_AT", "REASON"],
            revocations.Select(r => (IReadOnlyList<string>)[r.Id, Describe(r.Selector), r.Actor, Time(r.RevokedAt), Time(r.ExpiresAt), r.Reason]).ToList(),
            colour);
    }

    /// <summary><c>{"revocations": [...]}</c>.</summary>
    public static void WriteJson(TextWriter output, IEnumerable<WireRevocation> revocations) =>
        WriteJsonObject(output, writer =>
        {
            writer.WriteStartArray("revocations");
            foreach (var revocation in revocations)
            {
                WriteRevocation(writer, revocation);
            }

            writer.WriteEndArray();
        });

    /// <summary><c>{"epoch": ..., "cutoff": {...}}</c>.</summary>
    public static void WriteJson(TextWriter output, RestoreRevocationEpochResponse response) =>
        WriteJsonObject(output, writer =>
        {
            writer.WriteString("epoch", response.Epoch);
            if (response.Cutoff is { } cutoff)
            {
                writer.WritePropertyName("cutoff");
                WriteRevocation(writer, cutoff);
            }
            else
            {
                writer.WriteNull("cutoff");
            }
        });

    public static void WriteIntrospectionTable(TextWriter output, IntrospectResponse response, DateTimeOffset now)
    {
        var expires = response.ExpiresAt?.ToDateTimeOffset();
        var rows = new List<(string, string)>
        {
            ("active", response.Active ? "yes" : $"no — {InactiveReason(response.InactiveReason)}"),
        };
        if (!string.IsNullOrEmpty(response.TokenId) || !string.IsNullOrEmpty(response.Subject))
        {
            rows.Add(("token_id", Dash(response.TokenId)));
            rows.Add(("subject", Dash(response.Subject)));
            rows.Add(("audience", Dash(response.Audience)));
            rows.Add(("task", Dash(response.TaskId)));
            rows.Add(("phase", response.Phase == Phase.Unspecified ? "-" : IssueCommand.PhaseName(response.Phase)));
            rows.Add(("scopes", response.Scopes.Count == 0 ? "-" : string.Join(' ', response.Scopes)));
            rows.Add(("expires_at", expires is { } at
                ? $"{Time(at)} ({(at >= now ? "in " + Internal.Durations.Format(at - now) : Internal.Durations.Format(now - at) + " ago")})"
                : "-"));
        }

        OutputFormat.WriteTable(output, rows);
    }

    public static void WriteIntrospectionJson(TextWriter output, IntrospectResponse response) =>
        WriteJsonObject(output, writer =>
        {
            writer.WriteBoolean("active", response.Active);
            if (response.Active)
            {
                writer.WriteNull("inactive_reason");
            }
            else
            {
                writer.WriteString("inactive_reason", response.InactiveReason);
            }

            writer.WriteString("token_id", response.TokenId);
            writer.WriteString("subject", response.Subject);
            writer.WriteString("audience", response.Audience);
            writer.WriteString("task_id", response.TaskId);
            if (response.Phase == Phase.Unspecified)
            {
                writer.WriteNull("phase");
            }
            else
            {
                writer.WriteString("phase", IssueCommand.PhaseName(response.Phase));
            }

            writer.WriteStartArray("scopes");
            foreach (var scope in response.Scopes)
            {
                writer.WriteStringValue(scope);
            }

            writer.WriteEndArray();
            WriteTime(writer, "expires_at", response.ExpiresAt);
        });

    /// <summary>The broker's inactive reason, with what it means.</summary>
    public static string InactiveReason(string reason) => reason switch
    {
        "revoked" => "revoked: a revocation in force matches this token",
        "expired" => "expired: past its exp",
        "not_yet_valid" => "not_yet_valid: its nbf or iat is in the future",
        "invalid_signature" => "invalid_signature: not signed by a key this broker publishes",
        "wrong_issuer" => "wrong_issuer: not issued by this broker",
        "malformed" => "malformed: not a Broker access token",
        "" => "(no reason given)",
        _ => reason,
    };

    public static string Time(Timestamp? timestamp) => timestamp is null ? "-" : Time(timestamp.ToDateTimeOffset());

    public static string Time(DateTimeOffset time) =>
        time.UtcDateTime.ToString(time.Millisecond == 0 ? "yyyy-MM-dd'T'HH:mm:ss'Z'" : "yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private static void WriteRevocation(Utf8JsonWriter writer, WireRevocation revocation)
    {
        writer.WriteStartObject();
        writer.WriteString("id", revocation.Id);
        writer.WritePropertyName("selector");
        WriteSelector(writer, revocation.Selector);
        writer.WriteString("actor", revocation.Actor);
        writer.WriteString("reason", revocation.Reason);
        WriteTime(writer, "revoked_at", revocation.RevokedAt);
        WriteTime(writer, "expires_at", revocation.ExpiresAt);
        writer.WriteEndObject();
    }

    // {"type": "task", "task_id": "..."}: the type names the brokerctl subcommand, the fields the proto's.
    private static void WriteSelector(Utf8JsonWriter writer, RevocationSelector? selector)
    {
        writer.WriteStartObject();
        switch (selector?.TargetCase)
        {
            case RevocationSelector.TargetOneofCase.TokenId:
                writer.WriteString("type", "token");
                writer.WriteString("token_id", selector.TokenId);
                break;
            case RevocationSelector.TargetOneofCase.TaskId:
                writer.WriteString("type", "task");
                writer.WriteString("task_id", selector.TaskId);
                break;
            case RevocationSelector.TargetOneofCase.TaskPhase:
                writer.WriteString("type", "phase");
                writer.WriteString("task_id", selector.TaskPhase.TaskId);
                writer.WriteString("phase", IssueCommand.PhaseName(selector.TaskPhase.Phase));
                break;
            case RevocationSelector.TargetOneofCase.Agent:
                writer.WriteString("type", "agent");
                writer.WriteString("agent", selector.Agent);
                break;
            case RevocationSelector.TargetOneofCase.TrustDomain:
                writer.WriteString("type", "domain");
                writer.WriteString("trust_domain", selector.TrustDomain);
                break;
            case RevocationSelector.TargetOneofCase.IssuedBefore:
                writer.WriteString("type", "before");
                WriteTime(writer, "time", selector.IssuedBefore.Time);
                if (string.IsNullOrEmpty(selector.IssuedBefore.Agent))
                {
                    writer.WriteNull("agent");
                }
                else
                {
                    writer.WriteString("agent", selector.IssuedBefore.Agent);
                }

                break;
            default:
                writer.WriteString("type", "unknown");
                break;
        }

        writer.WriteEndObject();
    }

    private static void WriteTime(Utf8JsonWriter writer, string name, Timestamp? timestamp)
    {
        if (timestamp is null)
        {
            writer.WriteNull(name);
        }
        else
        {
            writer.WriteString(name, Time(timestamp));
        }
    }

    private static void WriteJsonObject(TextWriter output, Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            write(writer);
            writer.WriteEndObject();
        }

        output.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
    }

    private static string Dash(string value) => string.IsNullOrEmpty(value) ? "-" : value;
}
