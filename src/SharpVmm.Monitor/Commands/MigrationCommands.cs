using System.Text.Json.Nodes;
using SharpVmm.Machine.Migration;
using SharpVmm.Monitor.Protocol;
using SharpVmm.Monitor.Server;
using static SharpVmm.Monitor.Commands.QmpParameter;

namespace SharpVmm.Monitor.Commands;

/// <summary>
/// QEMU's migration commands over a <see cref="MigrationManager"/>: migrate (returns at once, runs in the background),
/// query-migrate, migrate_cancel, migrate-set-parameters, query-migrate-parameters and migrate-incoming, plus the
/// MIGRATION event at each status change and the run states inmigrate/postmigrate in query-status.
/// </summary>
public static class MigrationCommands
{
    public static void Register(QmpCommandTable table, VmMonitor monitor, Action<string, JsonObject?> emit, MigrationManager migration, QmpFdTable? fds = null)
    {
        if (fds is not null)
        {
            migration.NamedFds = name => fds.TryTake(name, out int fd) ? fd
                : throw new MigrationException($"File descriptor named '{name}' has not been found");
        }
        migration.Quiesce ??= action => monitor.WithQuiescentVm(() =>
        {
            action();
            return 0;
        });
        monitor.RunStateOverride = () => migration.RunStateOverride;
        MigrationCapabilityCommands.Register(table, migration);
        migration.StatusChanged += status =>
        {
            if (migration.Capabilities.Events) emit("MIGRATION", new JsonObject { ["status"] = status.Name() });
        };
        migration.PassStarted += pass =>
        {
            if (migration.Capabilities.Events) emit("MIGRATION_PASS", new JsonObject { ["pass"] = pass });
        };

        table.Register("migrate", call =>
        {
            if (call.GetBool("blk") == true || call.GetBool("inc") == true)
                throw QmpException.Generic("block migration (blk, inc) is not supported: share the disk images between source and target");
            if (call.GetBool("resume") == true)
                throw QmpException.Generic("resuming a postcopy migration is not supported: SharpVmm migrates by pre-copy only");
            Guard(() => migration.StartOutgoing(call.GetString("uri")!));
            return null;
        }, Req("uri", QmpType.String), Opt("blk", QmpType.Boolean), Opt("inc", QmpType.Boolean), Opt("detach", QmpType.Boolean),
            Opt("resume", QmpType.Boolean));

        table.Register("query-migrate", _ => QueryMigrate(migration.Stats));

        table.Register("migrate_cancel", _ =>
        {
            migration.CancelOutgoing();
            return null;
        });

        table.Register("migrate-continue", call =>
        {
            string state = call.GetString("state")!;
            MigrationStatus? wanted = null;
            foreach (var s in Enum.GetValues<MigrationStatus>())
                if (s.Name() == state) wanted = s;
            if (wanted is null) throw QmpException.Generic($"Parameter 'state' does not accept value '{state}'");
            Guard(() => migration.ContinueOutgoing(wanted.Value));
            return null;
        }, Req("state", QmpType.String));

        table.Register("migrate-set-parameters", call =>
        {
            // No TLS here: an empty name (what libvirt sends to say "none") is accepted, any other refused.
            foreach (string tls in TlsParameters)
                if (call.GetString(tls) is { Length: > 0 } v)
                    throw QmpException.Generic($"Parameter '{tls}': TLS migration is not supported by SharpVmm ('{v}' cannot be used); migrate over a trusted link");
            var p = migration.Parameters;
            if (call.GetInt("downtime-limit") is { } d) p = p with { DowntimeLimitMs = d };
            if (call.GetInt("max-bandwidth") is { } b) p = p with { MaxBandwidth = b };
            Guard(() => migration.Parameters = p);
            return null;
        }, Opt("downtime-limit", QmpType.Integer), Opt("max-bandwidth", QmpType.Integer),
            Opt("tls-creds", QmpType.String), Opt("tls-hostname", QmpType.String), Opt("tls-authz", QmpType.String));

        table.Register("query-migrate-parameters", _ =>
        {
            var p = migration.Parameters;
            return new JsonObject
            {
                ["downtime-limit"] = p.DowntimeLimitMs,
                ["max-bandwidth"] = p.MaxBandwidth,
                ["tls-creds"] = "",
                ["tls-hostname"] = "",
            };
        });

        table.Register("migrate-incoming", call =>
        {
            Guard(() => migration.RequestIncoming(call.GetString("uri")!));
            return null;
        }, Req("uri", QmpType.String));
    }

    private static readonly string[] TlsParameters = ["tls-creds", "tls-hostname", "tls-authz"];

    /// <summary>query-migrate's MigrationInfo: {} before any migration, as QEMU.</summary>
    public static JsonObject QueryMigrate(MigrationStats? s)
    {
        var info = new JsonObject();
        if (s is null || s.Status == MigrationStatus.None) return info;
        info["status"] = s.Status.Name();
        if (s.Status != MigrationStatus.Setup)
        {
            info["total-time"] = s.TotalTimeMs;
            info["setup-time"] = s.SetupTimeMs;
            if (s.DowntimeMs is { } down) info["downtime"] = down;
            else if (!s.Status.IsFinished()) info["expected-downtime"] = s.ExpectedDowntimeMs == long.MaxValue ? -1 : s.ExpectedDowntimeMs;
            info["ram"] = new JsonObject
            {
                ["transferred"] = s.Transferred,
                ["remaining"] = s.Remaining,
                ["total"] = s.Total,
                ["duplicate"] = s.Duplicate,
                ["skipped"] = 0,
                ["normal"] = s.Normal,
                ["normal-bytes"] = s.NormalBytes,
                ["dirty-pages-rate"] = s.DirtyPagesRate,
                ["mbps"] = Math.Round(s.Mbps, 3),
                ["dirty-sync-count"] = s.Rounds,
                ["page-size"] = MigrationProtocol.PageSize,
            };
        }
        if (s.Error is { } error) info["error-desc"] = error;
        if (s.Note is { } note) info["sharpvmm-note"] = note;
        return info;
    }

    private static void Guard(Action action)
    {
        try { action(); }
        catch (MigrationException ex) { throw QmpException.Generic(ex.Message); }
    }
}
