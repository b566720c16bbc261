namespace Broker.ResourceServer;

/// <summary>Claim names in Broker access tokens (as they appear with <c>MapInboundClaims = false</c>).</summary>
public static class BrokerClaimTypes
{
    /// <summary>Granted scopes, space-separated.</summary>
    public const string Scope = "scope";

    /// <summary>The task's phase: planning, execution or recovery.</summary>
    public const string Phase = "phase";

    /// <summary>The task id the agent chose.</summary>
    public const string Task = "task";

    /// <summary>The agent's session.</summary>
    public const string Session = "sid";

    /// <summary>The token id.</summary>
    public const string TokenId = "jti";

    /// <summary>The workload identity (SPIFFE ID or mapped OIDC subject).</summary>
    public const string Subject = "sub";

    /// <summary>Digest of the policy that allowed the token.</summary>
    public const string PolicyDigest = "policy_digest";
}

/// <summary>The phases of a task, as they appear in the <c>phase</c> claim.</summary>
public static class BrokerPhases
{
    /// <summary>Read-mostly work: gathering context, planning.</summary>
    public const string Planning = "planning";

    /// <summary>Acting on production.</summary>
    public const string Execution = "execution";

    /// <summary>Rollback and repair.</summary>
    public const string Recovery = "recovery";

    /// <summary>True for one of the three phase names (exact, lower case).</summary>
    public static bool IsKnown(string? phase) => phase is Planning or Execution or Recovery;
}
