using Broker.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;

namespace Broker.Client;

/// <summary>
/// The agent's side of Broker: asks for a credential for one task and one phase, exchanges a
/// token handed down by another agent (delegation), and ends the task. Every call carries a fresh proof from the <see cref="IAttestationSource"/>. Failures
/// surface as <see cref="BrokerRefusalException"/> with the stable reason code.
/// </summary>
/// <example>
/// <code>
/// using var broker = BrokerAgentClient.Create("https://broker.internal:5080", new FileJwtSvidSource("/run/spire/svid.jwt"));
/// var credential = await broker.IssueAsync("deploy-1234", Phase.Planning, ["repo:read"], "https://api.example.com");
/// </code>
/// </example>
public sealed class BrokerAgentClient : IDisposable
{
    /// <summary>The request header that carries a caller-chosen correlation id into Broker's logs and audit.</summary>
    public const string CorrelationIdHeader = "x-correlation-id";

    /// <summary>Longest correlation id sent; longer ones are refused before the call.</summary>
    public const int MaxCorrelationIdLength = 128;

    private readonly CredentialService.CredentialServiceClient _client;
    private readonly IAttestationSource _attestation;
    private readonly GrpcChannel? _ownedChannel;

    /// <summary>Uses an existing channel; the caller keeps ownership of it.</summary>
    public BrokerAgentClient(GrpcChannel channel, IAttestationSource attestation)
        : this(new CredentialService.CredentialServiceClient(channel ?? throw new ArgumentNullException(nameof(channel))), attestation)
    {
    }

    /// <summary>Uses a generated client, e.g. one from the gRPC client factory or a test double.</summary>
    public BrokerAgentClient(CredentialService.CredentialServiceClient client, IAttestationSource attestation)
    {
        _client = client ?? throw new ArgumentNullException(nameof(client));
        _attestation = attestation ?? throw new ArgumentNullException(nameof(attestation));
    }

    private BrokerAgentClient(GrpcChannel ownedChannel, IAttestationSource attestation, bool owned)
        : this(ownedChannel, attestation)
    {
        _ownedChannel = owned ? ownedChannel : null;
    }

    /// <summary>How long one call may take before it fails with DEADLINE_EXCEEDED. Default 30 seconds.</summary>
    public TimeSpan CallTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Opens a channel to <paramref name="address"/> (<c>https://</c>, or <c>http://</c> for
    /// h2c on loopback in dev) that this client owns and disposes.
    /// </summary>
    public static BrokerAgentClient Create(string address, IAttestationSource attestation, GrpcChannelOptions? channelOptions = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(address);
        var channel = GrpcChannel.ForAddress(address, channelOptions ?? new GrpcChannelOptions());
        return new BrokerAgentClient(channel, attestation, owned: true);
    }

    /// <summary>Asks for a credential for one task and one phase.</summary>
    /// <param name="taskId">The task, chosen by the agent (1 to 128 printable characters).</param>
    /// <param name="phase">The phase the credential is for.</param>
    /// <param name="scopes">Scopes wanted; all must be allowed, or the whole request is refused.</param>
    /// <param name="audience">The resource server the token is for.</param>
    /// <param name="ttl">Requested lifetime; null asks for the phase maximum.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="BrokerRefusalException">Broker refused, or could not be reached.</exception>
    public Task<IssueCredentialResponse> IssueAsync(
        string taskId,
        Phase phase,
        IEnumerable<string> scopes,
        string audience,
        TimeSpan? ttl = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(scopes);
        var request = new IssueCredentialRequest
        {
            TaskId = taskId ?? throw new ArgumentNullException(nameof(taskId)),
            Phase = phase,
            Audience = audience ?? throw new ArgumentNullException(nameof(audience)),
            RequestedTtl = ttl is { } value ? Duration.FromTimeSpan(value) : null,
        };
        request.Scopes.AddRange(scopes);
        return IssueAsync(request, correlationId: null, cancellationToken);
    }

    /// <summary>
    /// Sends <paramref name="request"/> as given; when it carries no attestation, a fresh proof
    /// from the client's <see cref="IAttestationSource"/> is added to a copy, so a request
    /// reused for a retry never carries a stale proof.
    /// </summary>
    /// <param name="request">The full request (justification, proof-of-possession key, ...).</param>
    /// <param name="correlationId">Optional id sent as <see cref="CorrelationIdHeader"/> to tie this call to the caller's own logs.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="BrokerRefusalException">Broker refused, or could not be reached.</exception>
    public async Task<IssueCredentialResponse> IssueAsync(IssueCredentialRequest request, string? correlationId = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Attestation is null)
        {
            request = request.Clone();
            request.Attestation = await _attestation.GetProofAsync(cancellationToken);
        }

        try
        {
            return await _client.IssueCredentialAsync(request, CallOptionsFor(correlationId, cancellationToken));
        }
        catch (RpcException ex)
        {
            throw new BrokerRefusalException(ex);
        }
    }

    /// <summary>
    /// Asks for a downstream credential (e.g. a PostgreSQL login) for one task and one phase
    /// (docs/secrets.md). The answer carries the credential once, or <c>pending</c> when policy
    /// gates it: then wait with <see cref="WaitForApprovalAsync"/>, whose answer's secret is set.
    /// </summary>
    /// <exception cref="BrokerRefusalException">Broker refused, or could not be reached.</exception>
    public async Task<IssueSecretResponse> IssueSecretAsync(IssueSecretRequest request, string? correlationId = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Attestation is null)
        {
            request = request.Clone();
            request.Attestation = await _attestation.GetProofAsync(cancellationToken);
        }

        try
        {
            return await _client.IssueSecretAsync(request, CallOptionsFor(correlationId, cancellationToken));
        }
        catch (RpcException ex)
        {
            throw new BrokerRefusalException(ex);
        }
    }

    /// <summary>
    /// Delegation: this client's workload, a sub-agent, exchanges the token another agent handed
    /// it (<paramref name="subjectToken"/>) for its own, narrower token for the same task (RFC 8693
    /// with an actor token; docs/oauth.md). Scopes default to all of the subject token's, the
    /// phase to its phase; the token expires no later than the subject token.
    /// </summary>
    /// <param name="subjectToken">The delegating agent's Broker access token.</param>
    /// <param name="scopes">A subset of the subject token's scopes; null or empty means all of them.</param>
    /// <param name="phase">The same phase as the subject token or planning; null means the same.</param>
    /// <param name="ttl">Requested lifetime; null asks for the phase maximum (still capped by the subject token's expiry).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="BrokerRefusalException">Broker refused (e.g. DELEGATION_NOT_ALLOWED, SCOPE_NOT_SUBSET), or could not be reached.</exception>
    public Task<ExchangeCredentialResponse> ExchangeAsync(
        string subjectToken,
        IEnumerable<string>? scopes = null,
        Phase? phase = null,
        TimeSpan? ttl = null,
        CancellationToken cancellationToken = default)
    {
        var request = new ExchangeCredentialRequest
        {
            SubjectToken = subjectToken ?? throw new ArgumentNullException(nameof(subjectToken)),
            Phase = phase ?? Phase.Unspecified,
            RequestedTtl = ttl is { } value ? Duration.FromTimeSpan(value) : null,
        };
        request.Scopes.AddRange(scopes ?? []);
        return ExchangeAsync(request, correlationId: null, cancellationToken);
    }

    /// <summary>
    /// Sends <paramref name="request"/> as given; without an actor attestation, a fresh proof from
    /// the client's <see cref="IAttestationSource"/> is added to a copy.
    /// </summary>
    /// <exception cref="BrokerRefusalException">Broker refused, or could not be reached.</exception>
    public async Task<ExchangeCredentialResponse> ExchangeAsync(ExchangeCredentialRequest request, string? correlationId = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.ActorAttestation is null)
        {
            request = request.Clone();
            request.ActorAttestation = await _attestation.GetProofAsync(cancellationToken);
        }

        try
        {
            return await _client.ExchangeCredentialAsync(request, CallOptionsFor(correlationId, cancellationToken));
        }
        catch (RpcException ex)
        {
            throw new BrokerRefusalException(ex);
        }
    }

    /// <summary>Ends a task: Broker refuses further issuance for it. Ending an ended task succeeds.</summary>
    /// <param name="taskId">The task to end; only the workload that owns it may end it.</param>
    /// <param name="reason">Optional reason recorded in the audit log (at most 512 characters).</param>
    /// <param name="correlationId">Optional id sent as <see cref="CorrelationIdHeader"/>.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="BrokerRefusalException">Broker refused, or could not be reached.</exception>
    public async Task<EndTaskResponse> EndTaskAsync(string taskId, string? reason = null, string? correlationId = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(taskId);
        var request = new EndTaskRequest
        {
            TaskId = taskId,
            Reason = reason ?? "",
            Attestation = await _attestation.GetProofAsync(cancellationToken),
        };
        try
        {
            return await _client.EndTaskAsync(request, CallOptionsFor(correlationId, cancellationToken));
        }
        catch (RpcException ex)
        {
            throw new BrokerRefusalException(ex);
        }
    }

    /// <summary>
    /// Waits for a pending approval (from <see cref="IssueCredentialResponse.Pending"/>) and
    /// returns the token once approvers reach quorum. Each call sends a fresh proof, so after a
    /// disconnect call it again, on any broker node. <paramref name="onUpdate"/> sees each
    /// PENDING update (votes so far).
    /// </summary>
    /// <exception cref="BrokerRefusalException">Denied (APPROVAL_DENIED), expired (APPROVAL_EXPIRED), already used, refused at issuance (e.g. RISK_TOO_HIGH), or unreachable.</exception>
    public Task<IssueCredentialResponse> WaitForApprovalAsync(string approvalId, Action<ApprovalUpdate>? onUpdate = null, string? correlationId = null, CancellationToken cancellationToken = default) =>
        WaitAsync(approvalId, update => update.Credential, onUpdate, correlationId, cancellationToken);

    /// <summary>
    /// Waits for a pending approval of a downstream credential (from <see cref="IssueSecretResponse.Pending"/>)
    /// and returns the credential once approvers reach quorum; otherwise as <see cref="WaitForApprovalAsync"/>.
    /// </summary>
    /// <exception cref="BrokerRefusalException">Denied, expired, already used, refused at issuance, or unreachable.</exception>
    public Task<IssueSecretResponse> WaitForSecretApprovalAsync(string approvalId, Action<ApprovalUpdate>? onUpdate = null, string? correlationId = null, CancellationToken cancellationToken = default) =>
        WaitAsync(approvalId, update => update.Secret, onUpdate, correlationId, cancellationToken);

    private async Task<T> WaitAsync<T>(string approvalId, Func<ApprovalUpdate, T?> result, Action<ApprovalUpdate>? onUpdate, string? correlationId, CancellationToken cancellationToken)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(approvalId);
        var request = new WaitForApprovalRequest { ApprovalId = approvalId, Attestation = await _attestation.GetProofAsync(cancellationToken) };
        var options = CallOptionsFor(correlationId, cancellationToken).WithDeadline(DateTime.MaxValue);
        try
        {
            using var call = _client.WaitForApproval(request, options);
            while (await call.ResponseStream.MoveNext(cancellationToken))
            {
                var update = call.ResponseStream.Current;
                if (result(update) is { } done)
                {
                    return done;
                }

                onUpdate?.Invoke(update);
            }
        }
        catch (RpcException ex)
        {
            throw new BrokerRefusalException(ex);
        }

        throw new BrokerRefusalException(new RpcException(new Status(StatusCode.Unavailable, "The wait ended without a credential; wait again.")));
    }

    /// <summary>Disposes the channel when this client opened it (<see cref="Create"/>).</summary>
    public void Dispose() => _ownedChannel?.Dispose();

    private CallOptions CallOptionsFor(string? correlationId, CancellationToken cancellationToken)
    {
        Metadata? headers = null;
        if (!string.IsNullOrEmpty(correlationId))
        {
            if (correlationId.Length > MaxCorrelationIdLength || correlationId.Any(c => c is < '!' or > '~'))
            {
                throw new ArgumentException($"A correlation id is 1 to {MaxCorrelationIdLength} printable ASCII characters without spaces.", nameof(correlationId));
            }

            headers = new Metadata { { CorrelationIdHeader, correlationId } };
        }

        return new CallOptions(headers, DateTime.UtcNow.Add(CallTimeout), cancellationToken);
    }
}
