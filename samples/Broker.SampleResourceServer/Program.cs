using System.Security.Cryptography.X509Certificates;
using Broker.ResourceServer;
using Broker.SampleResourceServer;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;

// appsettings.json next to the binary, wherever the process is started from.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
var sample = builder.Configuration.GetSection(SampleOptions.Section).Get<SampleOptions>() ?? new SampleOptions();
var problems = sample.Problems();
if (problems.Count > 0)
{
    foreach (var problem in problems)
    {
        Console.Error.WriteLine(problem);
    }

    return 2;
}

var privateCa = string.IsNullOrEmpty(sample.CaCertificatePath) ? null : X509CertificateLoader.LoadCertificateFromFile(sample.CaCertificatePath);

builder.Services.AddBrokerResourceServer(options =>
{
    options.Authority = sample.Issuer;
    options.Audience = sample.Audience;
    options.RevocationAddress = sample.RevocationAddress;
    options.RevocationTokenFile = Path.GetFullPath(sample.RevocationTokenFile); // read again at every reconnect
    options.RequireHttpsMetadata = sample.RequireHttpsMetadata;
    options.StaleStance = StaleStance.FailClosed; // the default, stated: no answer about revocation, no access
    if (privateCa is not null)
    {
        options.RevocationHttpHandler = BrokerTls.Handler(privateCa);
    }
});
if (privateCa is not null)
{
    // Configure (not PostConfigure): stock JwtBearer builds its backchannel from this handler in its own post-configure step.
    builder.Services.Configure<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme, o => o.BackchannelHttpHandler = BrokerTls.Handler(privateCa));
}

// Every endpoint needs a valid, unrevoked Broker token unless it says otherwise.
builder.Services.AddAuthorizationBuilder().SetFallbackPolicy(new AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build());
builder.Services.AddHealthChecks().AddBrokerRevocationCheck();

var app = builder.Build();
Log.Starting(app.Logger, sample.Issuer, sample.Audience, sample.RevocationAddress, sample.RequireHttpsMetadata);

if (sample.HealthOnlyPort > 0)
{
    // The plain-HTTP health port answers /healthz only, so a bearer token never crosses it.
    app.Use((context, next) =>
    {
        if (context.Connection.LocalPort == sample.HealthOnlyPort && !context.Request.Path.Equals("/healthz", StringComparison.Ordinal))
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return Task.CompletedTask;
        }

        return next(context);
    });
}

app.UseAuthentication();
app.UseAuthorization();

// 200 while the revocation stream is current, 503 otherwise: an instance that cannot confirm
// revocations refuses every token (fail closed), so it should not receive traffic.
app.MapHealthChecks("/healthz").AllowAnonymous();

app.MapGet("/repo", (HttpContext http) => Results.Json(Caller.From(http.User)))
   .RequireBrokerScope("repo:read");

app.MapPost("/deployments/staging", (HttpContext http) =>
{
    var caller = Caller.From(http.User);
    Log.Deployment(app.Logger, caller.Sub, caller.Task, caller.TokenId);
    return Results.Accepted(value: new { environment = "staging", caller.Sub, caller.Task, caller.TokenId });
})
   .RequireBrokerPhase(BrokerPhases.Execution)
   .RequireBrokerScope("deploy:staging");

app.Run();
return 0;

/// <summary>Who called, as the token says; the token id, never the token.</summary>
internal sealed record Caller(
    [property: System.Text.Json.Serialization.JsonPropertyName("sub")] string? Sub,
    [property: System.Text.Json.Serialization.JsonPropertyName("task")] string? Task,
    [property: System.Text.Json.Serialization.JsonPropertyName("phase")] string? Phase,
    [property: System.Text.Json.Serialization.JsonPropertyName("token_id")] string? TokenId)
{
    public static Caller From(System.Security.Claims.ClaimsPrincipal user) => new(
        user.FindFirst(BrokerClaimTypes.Subject)?.Value,
        user.FindFirst(BrokerClaimTypes.Task)?.Value,
        user.FindFirst(BrokerClaimTypes.Phase)?.Value,
        user.FindFirst(BrokerClaimTypes.TokenId)?.Value);
}

internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Accepting Broker tokens from issuer {Issuer} for audience {Audience}; revocations from {RevocationAddress}; HTTPS metadata required: {RequireHttps}")]
    public static partial void Starting(ILogger logger, string issuer, string audience, string revocationAddress, bool requireHttps);

    [LoggerMessage(2, LogLevel.Information, "Staging deployment requested by {Subject} for task {Task} with token {TokenId}")]
    public static partial void Deployment(ILogger logger, string? subject, string? task, string? tokenId);
}
