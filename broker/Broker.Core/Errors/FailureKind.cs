namespace Broker.Core.Errors;

/// <summary>The class of a refusal; the host maps each kind to one gRPC status code.</summary>
public enum FailureKind
{
    InvalidArgument,
    Unauthenticated,
    PermissionDenied,
    FailedPrecondition,
    NotFound,
    ResourceExhausted,
    Unavailable,
    Internal,
}
