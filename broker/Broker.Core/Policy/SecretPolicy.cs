namespace Broker.Core.Policy;

/// <summary>
/// A downstream system Broker mints credentials for (<c>secret_engines:</c>, docs/secrets.md).
/// The admin credential is referenced, never inlined: read from <see cref="AdminPasswordFile"/>
/// or <see cref="AdminPasswordEnv"/> when the engine connects.
/// </summary>
/// <param name="Name">How phases and requests name it, e.g. <c>orders-db</c>.</param>
/// <param name="Type">The engine kind, e.g. <c>postgres</c>.</param>
/// <param name="Connection">Where and as whom to connect (for postgres an Npgsql connection string without a password).</param>
/// <param name="ConnectionLimit">How many sessions one lease's login may hold at once.</param>
public sealed record SecretEnginePolicy(
    string Name,
    string Type,
    string Connection,
    string? AdminPasswordFile,
    string? AdminPasswordEnv,
    int ConnectionLimit);

/// <summary>One downstream credential a phase may get: a role on an engine, for at most <see cref="MaxLeaseTtl"/>.</summary>
/// <param name="Gate">When set, each lease waits for this approval first (like a gated scope); null when not gated.</param>
/// <param name="Line">Where the grant is declared (for messages).</param>
public sealed record SecretGrant(string Engine, string Role, TimeSpan MaxLeaseTtl, GatedScopes? Gate, int Line = 0)
{
    /// <summary>
    /// How an approval request names this grant among its scopes. '#' can never appear in a policy
    /// scope, so no token request can ask for (or be approved for) it.
    /// </summary>
    public string ApprovalScope => ApprovalScopeFor(Engine, Role);

    public static string ApprovalScopeFor(string engine, string role) => $"secret:{engine}#{role}";

    /// <summary>The approval request's audience for a grant on <paramref name="engine"/>.</summary>
    public static string ApprovalAudienceFor(string engine) => "broker-secret:" + engine;

    /// <summary>Reads an approval scope back; false for any ordinary scope.</summary>
    public static bool TryParseApprovalScope(string scope, out string engine, out string role)
    {
        engine = role = "";
        if (!scope.StartsWith("secret:", StringComparison.Ordinal))
        {
            return false;
        }

        var hash = scope.IndexOf('#', StringComparison.Ordinal);
        if (hash < 0)
        {
            return false;
        }

        engine = scope[7..hash];
        role = scope[(hash + 1)..];
        return engine.Length > 0 && role.Length > 0;
    }
}
