namespace Broker.Server.Hosting;

/// <summary>How operators (responders, approvers, IAM admins, auditors) authenticate to the admin API.</summary>
public sealed class OperatorOptions
{
    /// <summary>The organisation's OIDC IdP (its discovery document supplies the keys). Outside --dev this or <see cref="KeyFile"/> is required.</summary>
    public string Authority { get; set; } = "";

    /// <summary>
    /// Instead of an IdP: a JWKS file of the public keys that sign operator tokens (ES256 or RS256,
    /// public keys only), for installations without one; tokens are minted with
    /// <c>brokerctl operator-token</c>. Needs <see cref="Issuer"/>; never with <see cref="Authority"/>.
    /// </summary>
    public string KeyFile { get; set; } = "";

    /// <summary>The <c>iss</c> operator tokens signed with <see cref="KeyFile"/>'s keys carry (required with it).</summary>
    public string Issuer { get; set; } = "";

    /// <summary>Refuse <see cref="KeyFile"/> at start: an installation whose operators must come from the organisation's IdP.</summary>
    public bool RequireOidc { get; set; }

    /// <summary>The audience operator tokens must carry for Broker.</summary>
    public string Audience { get; set; } = "broker-admin";

    /// <summary>Claim holding the operator's roles or groups (string or array).</summary>
    public string RolesClaim { get; set; } = "roles";

    /// <summary>Claim naming the operator in audit records.</summary>
    public string NameClaim { get; set; } = "sub";

    /// <summary>--dev only: a local key that signs dev operator tokens instead of an IdP.</summary>
    public string DevSigningKeyFile { get; set; } = "";

    /// <summary>--dev only: the issuer of dev operator tokens.</summary>
    public string DevIssuer { get; set; } = "broker-dev-operators";
}

/// <summary>Operator roles; each admin method names the one it needs.</summary>
public static class OperatorRoles
{
    public const string Responder = "responder";
    public const string Approver = "approver";
    public const string IamAdmin = "iam-admin";
    public const string Auditor = "auditor";

    /// <summary>Reads the runtime-risk telemetry stream (signals, evidence references); not the audit log.</summary>
    public const string TelemetryReader = "telemetry-reader";

    public const string Scheme = "Operator";
}
