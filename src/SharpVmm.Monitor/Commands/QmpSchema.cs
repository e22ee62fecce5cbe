using System.Text.Json.Nodes;

namespace SharpVmm.Monitor.Commands;

/// <summary>
/// query-qmp-schema in QEMU's SchemaInfo shape, built from the live command table and the event catalog, so it
/// declares exactly what this server answers. Like QEMU, type names other than builtins are masked as numbers.
/// Return types are not modelled by the table and are declared as "any".
/// </summary>
public static class QmpSchema
{
    public static JsonArray Build(QmpCommandTable table)
    {
        var entities = new JsonArray();
        var objectTypes = new List<JsonObject>();
        var usedBuiltins = new SortedSet<string>(StringComparer.Ordinal) { "any" };
        var usedArrays = new SortedSet<string>(StringComparer.Ordinal);
        string empty = "0";
        objectTypes.Add(ObjectType(empty, []));

        string ArgType(IReadOnlyList<QmpParameter> parameters)
        {
            if (parameters.Count == 0) return empty;
            string name = objectTypes.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var members = new JsonArray();
            foreach (var p in parameters)
            {
                string type = TypeName(p.Type);
                if (p.Type == QmpType.Array) usedArrays.Add(type);
                else usedBuiltins.Add(type);
                var member = new JsonObject { ["name"] = p.Name, ["type"] = type };
                // QEMU marks an optional member with "default": null.
                if (!p.Required) member["default"] = null;
                members.Add((JsonNode)member);
            }
            objectTypes.Add(ObjectType(name, members));
            return name;
        }

        foreach (var (name, parameters) in table.Describe())
        {
            entities.Add((JsonNode)new JsonObject
            {
                ["name"] = name,
                ["meta-type"] = "command",
                ["arg-type"] = ArgType(parameters),
                ["ret-type"] = "any",
                ["allow-oob"] = false,
            });
        }
        foreach (var (name, data) in QmpEventCatalog.Events)
            entities.Add((JsonNode)new JsonObject { ["name"] = name, ["meta-type"] = "event", ["arg-type"] = ArgType(data) });
        foreach (var t in objectTypes) entities.Add((JsonNode)t);
        if (usedArrays.Count > 0) usedBuiltins.Add("any");
        foreach (string a in usedArrays)
            entities.Add((JsonNode)new JsonObject { ["name"] = a, ["meta-type"] = "array", ["element-type"] = "any" });
        foreach (string b in usedBuiltins)
            entities.Add((JsonNode)new JsonObject { ["name"] = b, ["meta-type"] = "builtin", ["json-type"] = JsonType(b) });
        return entities;
    }

    private static JsonObject ObjectType(string name, JsonArray members)
        => new() { ["name"] = name, ["meta-type"] = "object", ["members"] = members };

    private static string TypeName(QmpType t) => t switch
    {
        QmpType.String => "str",
        QmpType.Integer => "int",
        QmpType.Boolean => "bool",
        QmpType.Array => "[any]",
        QmpType.Object => "any",
        _ => "any",
    };

    private static string JsonType(string builtin) => builtin switch
    {
        "str" => "string",
        "int" => "int",
        "bool" => "boolean",
        _ => "value",
    };
}
