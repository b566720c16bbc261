using Broker.Core;
using Broker.Core.Secrets;

namespace Broker.Server.Tests.Secrets;

/// <summary>
/// What every secret engine must do, against the real downstream system. An engine is one file
/// in its own project and one subclass of this suite.
/// </summary>
public abstract class SecretEngineContract
{
    /// <summary>An engine connected to a working server with <see cref="ReadRole"/> and <see cref="WriteRole"/> set up.</summary>
    protected abstract ISecretEngine Engine { get; }

    /// <summary>An engine whose server cannot be reached.</summary>
    protected abstract ISecretEngine CreateUnreachableEngine();

    /// <summary>A role that may read the test data and not change it.</summary>
    protected abstract string ReadRole { get; }

    /// <summary>A role that may read and change it.</summary>
    protected abstract string WriteRole { get; }

    protected abstract Task<bool> LoginAcceptedAsync(DownstreamLogin login);

    protected abstract Task<bool> CanReadAsync(DownstreamLogin login);

    protected abstract Task<bool> CanWriteAsync(DownstreamLogin login);

    /// <summary>An open session the test holds while the lease is revoked.</summary>
    protected abstract Task<IAsyncDisposable> OpenSessionAsync(DownstreamLogin login);

    protected abstract Task<bool> IsAliveAsync(IAsyncDisposable session);

    /// <summary>Whether the server still knows the lease's login at all.</summary>
    protected abstract Task<bool> LoginExistsAsync(string login);

    protected static SecretLease Lease(string role, TimeSpan ttl)
    {
        var now = DateTimeOffset.UtcNow;
        now = now.AddTicks(-(now.Ticks % TimeSpan.TicksPerSecond));
        return new SecretLease(SecretLease.NewId(), "contract", role, SecretLease.NewLogin(), "task-" + Guid.NewGuid().ToString("N"), "spiffe://example.org/agents/a", TaskPhase.Planning, now, now + ttl, "test");
    }

    [Fact]
    public async Task A_login_can_do_exactly_what_its_role_allows()
    {
        var reader = await Engine.CreateAsync(Lease(ReadRole, TimeSpan.FromMinutes(5)), default);
        var writer = await Engine.CreateAsync(Lease(WriteRole, TimeSpan.FromMinutes(5)), default);

        Assert.True(await CanReadAsync(reader));
        Assert.False(await CanWriteAsync(reader));
        Assert.True(await CanWriteAsync(writer));
        Assert.DoesNotContain(reader.Password, reader.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_login_is_refused_once_its_lease_has_expired()
    {
        var login = await Engine.CreateAsync(Lease(ReadRole, TimeSpan.FromSeconds(2)), default);
        Assert.True(await LoginAcceptedAsync(login));

        Assert.True(await DatabaseSession.EventuallyAsync(async () => !await LoginAcceptedAsync(login), TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Revoking_ends_open_sessions_and_the_login()
    {
        var lease = Lease(WriteRole, TimeSpan.FromMinutes(5));
        var login = await Engine.CreateAsync(lease, default);
        await using var session = await OpenSessionAsync(login);
        Assert.True(await IsAliveAsync(session));

        await Engine.RevokeAsync(lease, default);

        Assert.False(await IsAliveAsync(session));
        Assert.False(await LoginAcceptedAsync(login));
        Assert.False(await LoginExistsAsync(lease.Login));
    }

    [Fact]
    public async Task Revoking_is_idempotent_and_accepts_a_login_never_created()
    {
        var lease = Lease(ReadRole, TimeSpan.FromMinutes(5));
        await Engine.RevokeAsync(lease, default);
        await Engine.CreateAsync(lease, default);
        await Engine.RevokeAsync(lease, default);
        await Engine.RevokeAsync(lease, default);

        Assert.False(await LoginExistsAsync(lease.Login));
    }

    [Fact]
    public async Task A_role_that_does_not_exist_is_a_policy_error_and_leaves_no_login()
    {
        var lease = Lease("no_such_role", TimeSpan.FromMinutes(5));

        var ex = await Assert.ThrowsAsync<SecretEngineException>(() => Engine.CreateAsync(lease, default));

        Assert.True(ex.RoleMissing);
        Assert.False(await LoginExistsAsync(lease.Login));
        Assert.Contains("no_such_role", await Engine.CheckAsync([ReadRole, "no_such_role"], default), StringComparison.Ordinal);
        Assert.Null(await Engine.CheckAsync([ReadRole, WriteRole], default));
    }

    [Fact]
    public async Task An_unreachable_server_is_unavailable_not_a_policy_error()
    {
        await using var engine = CreateUnreachableEngine();

        var ex = await Assert.ThrowsAsync<SecretEngineException>(() => engine.CreateAsync(Lease(ReadRole, TimeSpan.FromMinutes(5)), default));

        Assert.False(ex.RoleMissing);
        Assert.NotNull(await engine.CheckAsync([ReadRole], default));
    }
}
