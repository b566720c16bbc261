using Broker.Core.Audit;
using Broker.Core.Issuance;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Broker.Core.Ssf.Transmitter;

/// <summary>What a receiver chooses for a stream (SSF 1.0 section 7.1.1: the receiver-supplied members).</summary>
public sealed record SsfStreamRequest(string Method, string? EndpointUrl, string? AuthorizationHeader, IReadOnlyList<string> EventsRequested, string? Description);

/// <summary>
/// Stream management (SSF 1.0 section 7.1): create, read, update, delete and verify, each for
/// the calling receiver's own streams only. Creating and deleting are audited.
/// </summary>
public sealed partial class SsfStreamService(
    ISsfStreamStore store,
    SecurityEventWriter writer,
    IAuditSink audit,
    IOptions<SsfTransmitterOptions> options,
    SsfQueuePolicy queue,
    TimeProvider time,
    ILogger<SsfStreamService> logger)
{
    private readonly SsfTransmitterOptions _options = options.Value;

    /// <summary>Raised after this node created a stream, so its emitter queues what is in force without waiting for its next pass.</summary>
    public event Action? Created;

    public async Task<SsfStream> CreateAsync(string owner, string audience, SsfStreamRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var stream = new SsfStream(SecurityEventWriter.NewJti(), owner, audience, request.Method, request.EndpointUrl, request.AuthorizationHeader, request.EventsRequested, request.Description, time.GetUtcNow());
        var result = await Guard(() => store.CreateAsync(stream, _options.MaxStreamsPerReceiver, _options.MaxStreams, cancellationToken));
        switch (result)
        {
            case SsfCreateResult.OwnerLimitReached:
                throw SsfTransmitterException.Conflict($"This receiver already has {_options.MaxStreamsPerReceiver} streams (Broker:Ssf:Transmitter:MaxStreamsPerReceiver); delete one first.");
            case SsfCreateResult.LimitReached:
                throw SsfTransmitterException.Conflict($"The broker holds {_options.MaxStreams} streams (Broker:Ssf:Transmitter:MaxStreams).");
        }

        await AuditAsync(AuditEventTypes.SsfStreamCreated, stream, context, cancellationToken);
        Log.StreamCreated(logger, stream.Id, owner, stream.Method);
        Created?.Invoke();
        return stream;
    }

    public async Task<SsfStream> GetAsync(string owner, string streamId, CancellationToken cancellationToken) =>
        await Guard(() => store.GetAsync(owner, streamId, cancellationToken)) ?? throw SsfTransmitterException.NotFound(streamId);

    public Task<IReadOnlyList<SsfStream>> ListAsync(string owner, CancellationToken cancellationToken) =>
        Guard(() => store.ListAsync(owner, cancellationToken));

    /// <summary>Replaces what the receiver chose; the id, issuer, audience and delivery method stay.</summary>
    public async Task<SsfStream> UpdateAsync(string owner, string streamId, Func<SsfStream, SsfStreamRequest> change, CancellationToken cancellationToken)
    {
        var current = await GetAsync(owner, streamId, cancellationToken);
        var request = change(current);
        if (request.Method != current.Method)
        {
            throw SsfTransmitterException.BadRequest("delivery.method cannot change; create a new stream for another method.");
        }

        var updated = current with { EndpointUrl = request.EndpointUrl, AuthorizationHeader = request.AuthorizationHeader, EventsRequested = request.EventsRequested, Description = request.Description };
        if (!await Guard(() => store.UpdateAsync(updated, cancellationToken)))
        {
            throw SsfTransmitterException.NotFound(streamId);
        }

        return updated;
    }

    public async Task DeleteAsync(string owner, string streamId, RequestContext context, CancellationToken cancellationToken)
    {
        var stream = await GetAsync(owner, streamId, cancellationToken);
        if (!await Guard(() => store.DeleteAsync(owner, streamId, cancellationToken)))
        {
            throw SsfTransmitterException.NotFound(streamId);
        }

        await AuditAsync(AuditEventTypes.SsfStreamDeleted, stream, context, cancellationToken);
        Log.StreamDeleted(logger, streamId, owner);
    }

    /// <summary>Queues a verification SET (SSF 1.0 section 8.1.4), delivered like any other event.</summary>
    public async Task VerifyAsync(string owner, string streamId, string? state, CancellationToken cancellationToken)
    {
        var stream = await GetAsync(owner, streamId, cancellationToken);
        var jti = SecurityEventWriter.NewJti();
        if ((await Guard(() => store.EnqueueAsync(stream.Id, jti, writer.Verification(stream, jti, state), queue.Limits(), cancellationToken))).Gone)
        {
            throw SsfTransmitterException.NotFound(streamId);
        }
    }

    private async Task AuditAsync((int Id, string Name) type, SsfStream stream, RequestContext context, CancellationToken cancellationToken) =>
        await audit.AppendOrFailAsync(
            new AuditEvent
            {
                EventId = type.Id,
                Type = type.Name,
                Time = time.GetUtcNow(),
                CorrelationId = context.CorrelationId,
                Outcome = AuditOutcomes.Success,
                Actor = "resource_server:" + stream.Owner,
                Audience = stream.Audience,
                Detail = $"stream {stream.Id} ({(stream.IsPush ? "push" : "poll")})",
                Peer = context.Peer,
            },
            "The stream change could not be audited.",
            cancellationToken);

    // Shared state unreachable: say so (503), never guess (no partial answer).
    private static async Task<T> Guard<T>(Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (Exception ex) when (ex is not SsfTransmitterException and not OperationCanceledException and not Errors.BrokerException)
        {
            throw new SsfTransmitterException(503, "temporarily_unavailable", "Broker state cannot be reached; try again.");
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2750, Level = LogLevel.Information, Message = "SSF stream {StreamId} created by {Owner} ({Method})")]
        public static partial void StreamCreated(ILogger logger, string streamId, string owner, string method);

        [LoggerMessage(EventId = 2751, Level = LogLevel.Information, Message = "SSF stream {StreamId} deleted by {Owner}")]
        public static partial void StreamDeleted(ILogger logger, string streamId, string owner);
    }
}
