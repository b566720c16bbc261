using System.Security.Cryptography;
using Broker.Revocation;

namespace Broker.Core.Secrets;

/// <summary>
/// What Broker records about one downstream credential, durably, before handing it out: enough
/// for any node to find and end it. Never the password.
/// </summary>
/// <param name="LeaseId">A Broker token id, so revoking it as a token ends the lease.</param>
/// <param name="Login">The engine-side name of the lease's own login (e.g. a PostgreSQL role).</param>
/// <param name="Node">The node that issued it (for operators; any node may end it).</param>
public sealed record SecretLease(
    string LeaseId,
    string Engine,
    string Role,
    string Login,
    string TaskId,
    string Subject,
    TaskPhase Phase,
    DateTimeOffset IssuedAt,
    DateTimeOffset ExpiresAt,
    string Node)
{
    /// <summary>The lease as revocation sees it: a token of its task, phase and subject.</summary>
    public TokenFacts Facts => new(LeaseId, Subject, TaskId, Phase.ToWire(), IssuedAt);

    /// <summary>A fresh lease id: a Broker token id (128 random bits), so revocation by token id reaches it.</summary>
    public static string NewId() => Issuance.TokenMinter.NewTokenId();

    /// <summary>A fresh engine-side login name: <c>brk_</c> and 24 random hex digits (fits any engine's name rules).</summary>
    public static string NewLogin() => "brk_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
}

/// <summary>Why a lease ended, as the audit log records it.</summary>
/// <param name="Reason">revoked, expired or voided (issuance did not complete).</param>
/// <param name="Revocation">The revocation that ended it, when one did.</param>
public sealed record LeaseEnd(string Reason, RevocationEntry? Revocation = null, string? Detail = null)
{
    public static readonly LeaseEnd Expired = new("expired");

    public static LeaseEnd Revoked(RevocationEntry entry) => new("revoked", entry);

    public static LeaseEnd Voided(string why) => new("voided", Detail: why);
}
