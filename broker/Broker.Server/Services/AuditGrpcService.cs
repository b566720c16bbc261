using Broker.Core.Audit;
using Broker.Core.Errors;
using Broker.Server.Hosting;
using Broker.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.AspNetCore.Authorization;

namespace Broker.Server.Services;

/// <summary>
/// Tail and query this node's audit segments for auditors. Reads the files the sink writes (only
/// complete, durable lines), with the same filters as <c>brokerctl audit query</c>.
/// </summary>
[Authorize(Policy = OperatorRoles.Auditor)]
internal sealed class AuditGrpcService : AuditService.AuditServiceBase
{
    private const int MaxRecords = 10_000;
    private static readonly TimeSpan FollowInterval = TimeSpan.FromMilliseconds(200);

    private readonly FileAuditSink _sink;
    private readonly TimeProvider _time;
    private readonly IAuditHeadStore? _heads;

    public AuditGrpcService(FileAuditSink sink, TimeProvider time, IAuditHeadStore? heads = null)
    {
        _sink = sink;
        _time = time;
        _heads = heads;
    }

    public override async Task Tail(TailAuditRequest request, IServerStreamWriter<AuditRecord> responseStream, ServerCallContext context)
    {
        var lines = request.Lines <= 0 ? 20 : Math.Min(request.Lines, MaxRecords);
        var reader = new AuditReader([_sink.Directory]);
        foreach (var record in AuditFilter.Newest(reader.ReadNew(), lines))
        {
            await responseStream.WriteAsync(ToWire(record), context.CancellationToken);
        }

        if (!request.Follow)
        {
            return;
        }

        // Segments are the source of truth: poll them for lines that became durable since.
        var cancellation = context.CancellationToken;
        while (!cancellation.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(FollowInterval, _time, cancellation);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            foreach (var record in AuditOrder.Interleave(reader.ReadNew()))
            {
                await responseStream.WriteAsync(ToWire(record), cancellation);
            }
        }
    }

    public override Task<QueryAuditResponse> Query(QueryAuditRequest request, ServerCallContext context)
    {
        var filter = new AuditFilter(
            Optional(request.Agent),
            Optional(request.TaskId),
            Optional(request.TokenId),
            Optional(request.Actor),
            Optional(request.Type),
            request.Since?.ToDateTimeOffset(),
            request.Until?.ToDateTimeOffset());
        if (filter.Since is { } since && filter.Until is { } until && until < since)
        {
            throw BrokerErrors.InvalidArgument(BrokerErrors.SelectorInvalid, "until is before since.");
        }

        var limit = request.Limit <= 0 ? 1000 : Math.Min(request.Limit, MaxRecords);
        var matches = filter.Apply(AuditReader.ReadAll([_sink.Directory]), limit);
        var response = new QueryAuditResponse();
        response.Records.AddRange(matches.Select(ToWire));
        return Task.FromResult(response);
    }

    public override async Task<GetAuditHeadsResponse> GetHeads(GetAuditHeadsRequest request, ServerCallContext context)
    {
        IReadOnlyList<AuditHead> heads;
        if (_heads is null)
        {
            heads = [_sink.CurrentHead()];
        }
        else
        {
            try
            {
                heads = await _heads.ReadAllAsync(context.CancellationToken);
            }
            catch (Exception ex) when (ex is StackExchange.Redis.RedisException or TimeoutException)
            {
                throw BrokerErrors.Unavailable(BrokerErrors.StateUnavailable, "The published audit heads cannot be read (Redis).", ex);
            }
        }

        var response = new GetAuditHeadsResponse();
        response.Heads.AddRange(heads
            .Where(h => string.IsNullOrEmpty(request.Node) || h.Node == request.Node)
            .Select(h => new AuditHeadRecord { Json = AuditHeads.ToJson(h), Node = h.Node, Seq = h.Seq, Hash = h.Hash, Segment = h.Segment }));
        return response;
    }

    private static string? Optional(string value) => string.IsNullOrEmpty(value) ? null : value;

    private static AuditRecord ToWire(AuditLine line)
    {
        var e = line.Event;
        return new AuditRecord
        {
            Json = line.Json,
            Seq = e.Seq ?? 0,
            Node = e.Node ?? "",
            EventId = e.EventId,
            Type = e.Type,
            Time = Timestamp.FromDateTimeOffset(e.Time),
            CorrelationId = e.CorrelationId,
            Outcome = e.Outcome,
            Reason = e.Reason ?? "",
            Subject = e.Subject ?? "",
            TaskId = e.TaskId ?? "",
            Phase = e.Phase ?? "",
            TokenId = e.TokenId ?? "",
            Actor = e.Actor ?? "",
            Selector = e.Selector ?? "",
            ApprovalId = e.ApprovalId ?? "",
            PolicyDigest = e.PolicyDigest ?? "",
        };
    }
}
