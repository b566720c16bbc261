using System.Net;
using System.Security.Cryptography;
using Broker.Bench.V1;
using Broker.Testing;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Benchmarks;

/// <summary>
/// The bare ceiling: the same gRPC stack (real Kestrel, HTTP/2 h2c, grpc-dotnet) answering an
/// RPC that does nothing but sign one ES256 access-token-shaped JWT with a cached key. No
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

    /// <summary>Signs with the same handler settings and claim set as the broker's token minter.</summary>
    internal sealed class CeilingService : SignService.SignServiceBase, IDisposable
    {
        private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        private readonly SigningCredentials _credentials;
        private readonly JsonWebTokenHandler _handler = new() { SetDefaultTimesOnTokenCreation = false };

        // Verification as the broker's JWT-SVID validator asks the library for it: signature
        // only, one known key, claims left to the caller (a lifetime check is a comparison).
        private readonly JsonWebTokenHandler _proofHandler = new() { MaximumTokenSizeInBytes = 8 * 1024, MapInboundClaims = false };
        private readonly TokenValidationParameters? _proofParameters;

        public CeilingService(SecurityKey? proofKey)
        {
            _credentials = new SigningCredentials(new ECDsaSecurityKey(_key) { KeyId = "bench-ceiling" }, SecurityAlgorithms.EcdsaSha256);
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
            var now = DateTime.UtcNow;
            Span<byte> id = stackalloc byte[16];
            RandomNumberGenerator.Fill(id);
            var tokenId = Base64UrlEncoder.Encode(id.ToArray());
            var descriptor = new SecurityTokenDescriptor
            {
                Issuer = "http://127.0.0.1",
                Audience = request.Audience,
                IssuedAt = now,
                NotBefore = now,
                Expires = now.AddMinutes(10),
                TokenType = "at+jwt",
                Claims = new Dictionary<string, object>(StringComparer.Ordinal)
                {
                    [JwtRegisteredClaimNames.Sub] = subject,
                    [JwtRegisteredClaimNames.Jti] = tokenId,
                    ["client_id"] = subject,
                    ["scope"] = string.Join(' ', request.Scopes),
                    ["task"] = request.TaskId,
                    ["phase"] = "planning",
                    ["sid"] = "0123456789abcdefghijkl",
                    ["policy_digest"] = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                },
                SigningCredentials = _credentials,
            };

            return new SignResponse { AccessToken = _handler.CreateToken(descriptor), TokenId = tokenId };
        }

        public void Dispose() => _key.Dispose();
    }
}
