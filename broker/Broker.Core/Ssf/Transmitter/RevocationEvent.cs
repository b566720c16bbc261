using Broker.Revocation;

namespace Broker.Core.Ssf.Transmitter;

/// <summary>
/// What one revocation log entry says to a receiver: the SSF subject (<c>sub_id</c>) its
/// selector names and the CAEP <c>session-revoked</c> event. The mapping (docs/ssf.md):
/// a token is a <c>jwt_id</c> subject (<c>iss</c> + <c>jti</c>); a task, a phase of a task, an
/// agent, a trust domain and "everything issued before" are <c>complex</c> subjects whose
/// <c>session</c> (the token's <c>task</c> claim), <c>user</c> (the token's <c>iss</c> + <c>sub</c>)
/// or <c>tenant</c> (the SPIFFE trust domain, or the issuer) member names what matched. The
/// event's <c>broker_revocation</c> member restates the selector in one flat object, with
/// <c>issued_before</c> where only tokens issued up to a time are revoked, so a receiver can
/// apply it without parsing subjects.
/// </summary>
public static class RevocationEvent
{
    public static Dictionary<string, object> Subject(RevocationEntry entry, string issuer)
    {
        var selector = entry.Selector;
        return selector.Kind switch
        {
            RevocationKind.Token => new() { ["format"] = "jwt_id", ["iss"] = issuer, ["jti"] = selector.Value },
            RevocationKind.Task or RevocationKind.TaskPhase => Complex("session", Opaque(selector.Value)),
            RevocationKind.Agent or RevocationKind.AgentIssuedBefore => Complex("user", new() { ["format"] = "iss_sub", ["iss"] = issuer, ["sub"] = selector.Value }),
            RevocationKind.TrustDomain => Complex("tenant", new() { ["format"] = "uri", ["uri"] = "spiffe://" + selector.Value }),
            RevocationKind.IssuedBefore => Complex("tenant", new() { ["format"] = "uri", ["uri"] = issuer }),
            _ => throw new ArgumentOutOfRangeException(nameof(entry), selector.Kind, "Unknown revocation kind."),
        };
    }

    /// <summary>The <c>session-revoked</c> event body (CAEP 1.0 sections 2 and 3.1).</summary>
    public static Dictionary<string, object> Body(RevocationEntry entry)
    {
        var body = new Dictionary<string, object>(StringComparer.Ordinal)
        {
            ["event_timestamp"] = entry.RevokedAt.ToUnixTimeSeconds(),
            ["initiating_entity"] = InitiatingEntity(entry.Actor),
            ["reason_admin"] = new Dictionary<string, object> { ["en"] = entry.Reason },
            ["broker_revocation"] = Selector(entry),
        };
        return body;
    }

    /// <summary>The selector flat: <c>kind</c> and what it names; <c>issued_before</c> (seconds) bounds the tokens matched.</summary>
    public static Dictionary<string, object> Selector(RevocationEntry entry)
    {
        var selector = entry.Selector;
        var flat = new Dictionary<string, object>(StringComparer.Ordinal)
        {
            ["kind"] = Kind(selector.Kind),
            ["revocation_id"] = entry.Id,
        };
        switch (selector.Kind)
        {
            case RevocationKind.Token:
                flat["jti"] = selector.Value;
                break;
            case RevocationKind.Task:
                flat["task_id"] = selector.Value;
                break;
            case RevocationKind.TaskPhase:
                flat["task_id"] = selector.Value;
                flat["phase"] = selector.Phase ?? "";
                flat["issued_before"] = Seconds(entry.RevokedAt);
                break;
            case RevocationKind.Agent:
                flat["sub"] = selector.Value;
                flat["issued_before"] = Seconds(entry.RevokedAt);
                break;
            case RevocationKind.TrustDomain:
                flat["trust_domain"] = selector.Value;
                flat["issued_before"] = Seconds(entry.RevokedAt);
                break;
            case RevocationKind.IssuedBefore:
                flat["issued_before"] = Seconds(selector.Before ?? entry.RevokedAt);
                break;
            case RevocationKind.AgentIssuedBefore:
                flat["sub"] = selector.Value;
                flat["issued_before"] = Seconds(selector.Before ?? entry.RevokedAt);
                break;
        }

        return flat;
    }

    public static string Kind(RevocationKind kind) => kind switch
    {
        RevocationKind.Token => "token",
        RevocationKind.Task => "task",
        RevocationKind.TaskPhase => "task_phase",
        RevocationKind.Agent => "agent",
        RevocationKind.TrustDomain => "trust_domain",
        RevocationKind.IssuedBefore => "issued_before",
        RevocationKind.AgentIssuedBefore => "agent_issued_before",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown revocation kind."),
    };

    // Broker compares iat (whole seconds) with the revocation time: "issued up to" includes the second revoked in.
    private static long Seconds(DateTimeOffset time) => time.ToUnixTimeSeconds();

    // CAEP initiating_entity: admin (an operator), user (an agent revoking its own token), policy
    // (risk containment, end of task by policy), system (anything else Broker did on its own).
    private static string InitiatingEntity(string actor) =>
        actor.StartsWith("operator:", StringComparison.Ordinal) ? "admin"
        : actor.StartsWith("agent:", StringComparison.Ordinal) ? "user"
        : actor.StartsWith("broker:risk", StringComparison.Ordinal) ? "policy"
        : "system";

    private static Dictionary<string, object> Opaque(string id) => new() { ["format"] = "opaque", ["id"] = id };

    private static Dictionary<string, object> Complex(string member, Dictionary<string, object> subject) =>
        new() { ["format"] = "complex", [member] = subject };
}
