using Broker.Core.Approvals;
using Broker.Redis;
using Broker.Server.Services;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Broker.Server.Hosting;

/// <summary>Approval gates: the request store (Redis in production), the service and its admin API. See docs/approvals.md.</summary>
internal static class ApprovalServerExtensions
{
    public static IServiceCollection AddApprovals(this IServiceCollection services, BrokerOptions options)
    {
        if (!string.IsNullOrWhiteSpace(options.Redis.Configuration))
        {
            services.AddSingleton<IApprovalStore, RedisApprovalStore>();
        }

        services.TryAddSingleton<IApprovalStore, InMemoryApprovalStore>();
        if (!string.IsNullOrEmpty(options.Approvals.WebhookUrl))
        {
            services.AddApprovalWebhook();
        }

        services.TryAddSingleton<IApprovalNotifier, NoApprovalNotifier>();
        services.AddSingleton<ApprovalService>();
        services.AddSingleton<ApprovalWakeups>();
        services.AddSingleton<ApprovalSweeper>();
        services.AddHostedService(sp => sp.GetRequiredService<ApprovalSweeper>());
        return services;
    }

    public static WebApplication MapApprovals(this WebApplication app)
    {
        app.MapGrpcService<ApprovalAdminGrpcService>();
        return app;
    }
}
