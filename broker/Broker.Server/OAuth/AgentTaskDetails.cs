using System.Text.Json;

namespace Broker.Server.OAuth;

/// <summary>
/// The RFC 9396 authorization details entry of type <c>agent_task</c>: which task, which phase,
/// and why. Read strictly: one entry, string members, nothing unknown (so a typo never
/// quietly falls back to the policy's default phase). Values are checked by the domain.
/// </summary>
/// <param name="TaskId">Null: Broker chooses one.</param>
/// <param name="Phase">Null: the agent rule's <c>default_phase</c>.</param>
internal sealed record AgentTaskDetails(string? TaskId, string? Phase, string? Justification)
{
    public static readonly AgentTaskDetails None = new(null, null, null);

    private static readonly HashSet<string> Members = new(StringComparer.Ordinal) { "type", "task_id", "phase", "justification" };

    public static AgentTaskDetails Parse(string? json)
    {
        if (json is null)
        {
            return None;
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 4 });
        }
        catch (JsonException)
        {
            throw Invalid("authorization_details is not valid JSON.");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Array || root.GetArrayLength() != 1)
            {
                throw Invalid($"authorization_details must be an array of exactly one object of type {OAuthProtocol.AgentTaskType}.");
            }

            var entry = root[0];
            if (entry.ValueKind != JsonValueKind.Object)
            {
                throw Invalid("authorization_details entries are objects.");
            }

            string? taskId = null, phase = null, justification = null, type = null;
            foreach (var member in entry.EnumerateObject())
            {
                if (!Members.Contains(member.Name))
                {
                    throw Invalid($"{OAuthProtocol.AgentTaskType} has no member '{(member.Name.Length > 32 ? member.Name[..32] : member.Name)}'; it takes task_id, phase and justification.");
                }

                if (member.Value.ValueKind != JsonValueKind.String)
                {
                    throw Invalid($"{OAuthProtocol.AgentTaskType}.{member.Name} must be a string.");
                }

                var value = member.Value.GetString();
                switch (member.Name)
                {
                    case "type": type = value; break;
                    case "task_id": taskId = value; break;
                    case "phase": phase = value; break;
                    default: justification = value; break;
                }
            }

            if (type != OAuthProtocol.AgentTaskType)
            {
                throw Invalid($"The only authorization_details type served is {OAuthProtocol.AgentTaskType}.");
            }

            return new AgentTaskDetails(taskId, phase, justification);
        }
    }

    private static OAuthRequestException Invalid(string message) =>
        new(OAuthProtocol.InvalidAuthorizationDetails, OAuthReasons.AuthorizationDetailsInvalid, message);
}
