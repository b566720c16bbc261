namespace Broker.Core.Secrets;

/// <summary>
/// One downstream system Broker mints credentials for. Small on purpose: each engine is one file
/// and passes one contract suite (tests/Broker.Server.Tests/Secrets/SecretEngineContract.cs).
/// Implementations never log, store or trace the credential they return.
/// </summary>
public interface ISecretEngine : IAsyncDisposable
{
    /// <summary>The engine's name in policy (<c>secret_engines[].name</c>).</summary>
    string Name { get; }

    /// <summary>
    /// Creates the lease's credential: valid until <see cref="SecretLease.ExpiresAt"/> at the
    /// latest, holding exactly <see cref="SecretLease.Role"/>'s rights. Throws
    /// <see cref="SecretEngineException"/> when the engine is down or the role does not exist.
    /// </summary>
    Task<DownstreamLogin> CreateAsync(SecretLease lease, CancellationToken cancellationToken);

    /// <summary>
    /// Ends the lease's credential: no new logins, live sessions terminated, the login removed.
    /// Idempotent: ending a credential that is already gone (or was never created) succeeds.
    /// </summary>
    Task RevokeAsync(SecretLease lease, CancellationToken cancellationToken);

    /// <summary>Null when the engine answers and every role in <paramref name="roles"/> exists; otherwise why not.</summary>
    Task<string?> CheckAsync(IReadOnlyCollection<string> roles, CancellationToken cancellationToken);
}

/// <summary>Builds an engine of one <see cref="Type"/> from its policy entry.</summary>
public interface ISecretEngineFactory
{
    /// <summary>The <c>type:</c> it handles, e.g. <c>postgres</c>.</summary>
    string Type { get; }

    ISecretEngine Create(Policy.SecretEnginePolicy engine);
}

/// <summary>A database login handed out once. Its text form never shows the password.</summary>
public sealed record DownstreamLogin(string Host, int Port, string Database, string Username, string Password)
{
    public override string ToString() => $"{Username}@{Host}:{Port}/{Database}";
}

/// <summary>Why an engine could not act. <see cref="RoleMissing"/> is a policy error; anything else is the engine being unavailable.</summary>
/// <param name="nothingDone">The engine is sure it changed nothing (e.g. it could not connect), so there is nothing to clean up.</param>
public sealed class SecretEngineException(string engine, string message, bool roleMissing = false, bool nothingDone = false, Exception? inner = null)
    : Exception(message, inner)
{
    public string Engine { get; } = engine;

    public bool RoleMissing { get; } = roleMissing;

    public bool NothingDone { get; } = nothingDone;
}
