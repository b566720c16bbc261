using System.Security.Cryptography.X509Certificates;

namespace Broker.Core.Attestation;

public enum AttestationKind
{
    JwtSvid,
    X509Svid,
    OidcToken,
}

/// <summary>What the caller presented to prove its workload identity.</summary>
public abstract record AttestationEvidence;

/// <summary>A SPIFFE JWT-SVID in compact JWS form.</summary>
public sealed record JwtSvidEvidence(string Token) : AttestationEvidence;

/// <summary>An OIDC workload token (Kubernetes projected service-account token, CI OIDC token).</summary>
public sealed record OidcTokenEvidence(string Token) : AttestationEvidence;

/// <summary>The TLS client certificate of this connection, if any (mutual TLS X.509-SVID).</summary>
public sealed record X509SvidEvidence(X509Certificate2? ClientCertificate) : AttestationEvidence;
