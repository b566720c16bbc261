using Broker.Client;
using Broker.V1;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;

namespace Broker.Client.Tests;

public sealed class BrokerAgentClientTests
{
    [Fact]
    public async Task Issue_attaches_a_fresh_proof_from_the_attestation_source_to_every_call()
    {
        var service = new FakeCredentialService();
        var source = new CountingSource();
        var client = new BrokerAgentClient(service, source);

        await client.IssueAsync("T-1", Phase.Planning, ["repo:read"], "https://api.dev.local", TimeSpan.FromMinutes(2));
        await client.IssueAsync("T-1", Phase.Planning, ["repo:read"], "https://api.dev.local");

        Assert.Equal(["svid-1", "svid-2"], service.IssueRequests.Select(r => r.Attestation.JwtSvid));
        var first = service.IssueRequests[0];
        Assert.Equal("T-1", first.TaskId);
        Assert.Equal(Phase.Planning, first.Phase);
        Assert.Equal(["repo:read"], first.Scopes);
        Assert.Equal(TimeSpan.FromMinutes(2), first.RequestedTtl.ToTimeSpan());
        Assert.Null(service.IssueRequests[1].RequestedTtl);
    }

    [Fact]
    public async Task Issue_keeps_a_proof_the_caller_set_and_sends_the_correlation_id_header()
    {
        var service = new FakeCredentialService();
        var client = new BrokerAgentClient(service, new CountingSource());
        var request = new IssueCredentialRequest
        {
            TaskId = "T-1",
            Phase = Phase.Execution,
            Audience = "https://api.dev.local",
            Attestation = new AttestationProof { OidcToken = "oidc" },
            Scopes = { "deploy:staging" },
        };

        await client.IssueAsync(request, correlationId: "run-42");

        Assert.Equal("oidc", service.IssueRequests.Single().Attestation.OidcToken);
        Assert.Equal("run-42", service.LastHeaders?.GetValue(BrokerAgentClient.CorrelationIdHeader));
        Assert.NotNull(service.LastDeadline);
    }

    [Fact]
    public async Task A_reused_request_gets_a_fresh_proof_each_time_and_is_not_modified()
    {
        var service = new FakeCredentialService();
        var client = new BrokerAgentClient(service, new CountingSource());
        var request = new IssueCredentialRequest { TaskId = "T-1", Phase = Phase.Planning, Audience = "a", Scopes = { "repo:read" } };

        await client.IssueAsync(request);
        await client.IssueAsync(request);

        Assert.Null(request.Attestation);
        Assert.Equal(["svid-1", "svid-2"], service.IssueRequests.Select(r => r.Attestation.JwtSvid));
    }

    [Fact]
    public async Task A_refusal_surfaces_as_BrokerRefusalException_with_the_reason()
    {
        var service = new FakeCredentialService
        {
            Failure = BrokerRefusalTests.Refusal(Code.Unauthenticated, "attestation proof has expired", "ATTESTATION_EXPIRED"),
        };
        var client = new BrokerAgentClient(service, new StaticJwtSvidSource("svid"));

        var ex = await Assert.ThrowsAsync<BrokerRefusalException>(() => client.IssueAsync("T-1", Phase.Planning, ["repo:read"], "aud"));

        Assert.Equal("ATTESTATION_EXPIRED", ex.Refusal.Reason);
        Assert.Equal(StatusCode.Unauthenticated, ex.Refusal.Status);
        Assert.IsType<RpcException>(ex.InnerException);
    }

    [Fact]
    public async Task End_task_sends_the_task_reason_and_proof()
    {
        var service = new FakeCredentialService();
        var client = new BrokerAgentClient(service, MutualTlsSource.Instance);

        await client.EndTaskAsync("T-1", "done");

        var request = service.EndRequests.Single();
        Assert.Equal("T-1", request.TaskId);
        Assert.Equal("done", request.Reason);
        Assert.True(request.Attestation.X509Svid);
    }

    [Theory]
    [InlineData("has space")]
    [InlineData("tab\t")]
    public async Task A_correlation_id_that_is_not_printable_ascii_is_refused_before_the_call(string correlationId)
    {
        var service = new FakeCredentialService();
        var client = new BrokerAgentClient(service, new StaticJwtSvidSource("svid"));

        await Assert.ThrowsAsync<ArgumentException>(() => client.EndTaskAsync("T-1", correlationId: correlationId));
        Assert.Empty(service.EndRequests);
    }

    [Fact]
    public async Task File_source_reads_the_rotated_svid_on_each_call()
    {
        var path = Path.Combine(Path.GetTempPath(), $"svid-{Guid.NewGuid():N}.jwt");
        try
        {
            await File.WriteAllTextAsync(path, "first\n");
            var source = new FileJwtSvidSource(path);
            Assert.Equal("first", (await source.GetProofAsync()).JwtSvid);

            await File.WriteAllTextAsync(path, "second");
            Assert.Equal("second", (await source.GetProofAsync()).JwtSvid);

            await File.WriteAllTextAsync(path, "  \n");
            await Assert.ThrowsAsync<InvalidDataException>(async () => await source.GetProofAsync());
        }
        finally
        {
            File.Delete(path);
        }
    }

    private sealed class CountingSource : IAttestationSource
    {
        private int _count;

        public ValueTask<AttestationProof> GetProofAsync(CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(new AttestationProof { JwtSvid = $"svid-{Interlocked.Increment(ref _count)}" });
    }

    /// <summary>The generated client's virtual methods, answered in memory.</summary>
    private sealed class FakeCredentialService : CredentialService.CredentialServiceClient
    {
        public List<IssueCredentialRequest> IssueRequests { get; } = [];

        public List<EndTaskRequest> EndRequests { get; } = [];

        public Metadata? LastHeaders { get; private set; }

        public DateTime? LastDeadline { get; private set; }

        public RpcException? Failure { get; init; }

        public override AsyncUnaryCall<IssueCredentialResponse> IssueCredentialAsync(IssueCredentialRequest request, CallOptions options)
        {
            IssueRequests.Add(request.Clone());
            return Answer(options, new IssueCredentialResponse { TokenId = "jti", AccessToken = "token", Phase = request.Phase });
        }

        public override AsyncUnaryCall<EndTaskResponse> EndTaskAsync(EndTaskRequest request, CallOptions options)
        {
            EndRequests.Add(request.Clone());
            return Answer(options, new EndTaskResponse { EndedAt = Timestamp.FromDateTime(DateTime.UtcNow) });
        }

        private AsyncUnaryCall<T> Answer<T>(CallOptions options, T response)
        {
            LastHeaders = options.Headers;
            LastDeadline = options.Deadline;
            var task = Failure is null ? Task.FromResult(response) : Task.FromException<T>(Failure);
            return new AsyncUnaryCall<T>(task, Task.FromResult(new Metadata()), () => Grpc.Core.Status.DefaultSuccess, () => [], () => { });
        }
    }
}
