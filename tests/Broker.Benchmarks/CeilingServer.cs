using System.Net;
using System.Security.Cryptography;
using Broker.Bench.V1;
using Broker.Testing;
using Grpc.Core;
using Grpc.Net.Client;
using Broker.Core;
using Broker.Core.Issuance;
using Broker.Core.Signing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Benchmarks;

/// <summary>
/// The bare ceiling: the same gRPC stack (real Kestrel, HTTP/2 h2c, grpc-dotnet) answering an
/// RPC that does nothing but sign one ES256 access token with the broker's own token minter and a
/// cached key. No
/// attestation, policy, state or audit: what issuance could reach if those cost nothing. Its
/// cold-path variant first verifies the presented JWT-SVID's signature, as a node must for a
/// proof it has not seen before.
/// </summary>
internal sealed class CeilingServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private CeilingServer(WebApplication app, string address)
    {
        _app = app;
        Address = address;
    }

    public string Address { get; }

    /// <param name="proofKey">The trust domain's public key (with its kid) that VerifyAndSign checks JWT-SVIDs against; null leaves that RPC refusing.</param>
    public static async Task<CeilingServer> StartAsync(SecurityKey? proofKey = null)
    {
        var port = RedisServer.FreePort();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Production" });
        BenchmarkBroker.ConfigureQuietLogging(builder);
        builder.WebHost.ConfigureKestrel(kestrel =>
            kestrel.Listen(IPAddress.Loopback, port, listen => listen.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(_ => new CeilingService(proofKey));
        var app = builder.Build();
        app.MapGrpcService<CeilingService>();
        await app.StartAsync();
        return new CeilingServer(app, $"http://127.0.0.1:{port}");
    }

    public GrpcChannel CreateChannel() => Channels.Create(Address);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    /// <summary>Signs through the broker's token minter, with the claim set an issuance has.</summary>
    internal sealed class CeilingService : SignService.SignServiceBase, IDisposable
    {
        private readonly SigningKey _key = SigningKey.Generate(DateTimeOffset.MinValue);
        private readonly TokenMinter _minter;

        // Verification as the broker's JWT-SVID validator asks the library for it: signature
        // only, one known key, claims left to the caller (a lifetime check is a comparison).
        private readonly JsonWebTokenHandler _proofHandler = new() { MaximumTokenSizeInBytes = 8 * 1024, MapInboundClaims = false };
        private readonly TokenValidationParameters? _proofParameters;

        public CeilingService(SecurityKey? proofKey)
        {
            _minter = new TokenMinter(new SigningKeyRing([_key], TimeSpan.FromHours(1), TimeSpan.FromHours(1), TimeSpan.FromMinutes(1)), "http://127.0.0.1");
            if (proofKey is not null)
            {
                _proofParameters = Broker.Jose.SignatureOnlyValidation.For(proofKey, [SecurityAlgorithms.EcdsaSha256], requireExpiration: true);
                _proofParameters.TryAllIssuerSigningKeys = false;
            }
        }

        public override Task<SignResponse> Sign(SignRequest request, ServerCallContext context) =>
            Task.FromResult(SignFor(request.Subject, request));

        public override async Task<SignResponse> VerifyAndSign(SignRequest request, ServerCallContext context)
        {
            if (_proofParameters is null)
            {
                throw new RpcException(new Status(StatusCode.FailedPrecondition, "this ceiling server has no proof key"));
            }

            var result = await _proofHandler.ValidateTokenAsync(request.Attestation, _proofParameters);
            if (!result.IsValid)
            {
                throw new RpcException(new Status(StatusCode.Unauthenticated, $"attestation proof does not verify ({result.Exception?.GetType().Name})"));
            }

            return SignFor(((JsonWebToken)result.SecurityToken).Subject, request);
        }

        private SignResponse SignFor(string subject, SignRequest request)
        {
            var now = DateTimeOffset.UtcNow;
            var tokenId = TokenMinter.NewTokenId();
            var token = _minter.Mint(new TokenClaims(
                tokenId,
                subject,
                request.Audience,
                request.Scopes,
                request.TaskId,
                TaskPhase.Planning,
                "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                now,
                now.AddMinutes(10),
                null,
                null));
            return new SignResponse { AccessToken = token, TokenId = tokenId };
        }

        public void Dispose() => ((ECDsaSecurityKey)_key.Credentials.Key).ECDsa.Dispose();
    }
}
