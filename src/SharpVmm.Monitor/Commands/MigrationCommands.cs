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
    public static void Register(QmpCommandTable table, VmMonitor monitor, Action<string, JsonObject?> emit, MigrationManager migration)
    {
        migration.Quiesce ??= action => monitor.WithQuiescentVm(() =>
        {
            action();
            return 0;
        });
        monitor.RunStateOverride = () => migration.RunStateOverride;
        var capabilities = MigrationCapabilities.Register(table);
        migration.StatusChanged += status =>
        {
            if (capabilities.Events) emit("MIGRATION", new JsonObject { ["status"] = status.Name() });
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

        table.Register("migrate-set-parameters", call =>
        {
            var p = migration.Parameters;
            if (call.GetInt("downtime-limit") is { } d) p = p with { DowntimeLimitMs = d };
            if (call.GetInt("max-bandwidth") is { } b) p = p with { MaxBandwidth = b };
            Guard(() => migration.Parameters = p);
            return null;
        }, Opt("downtime-limit", QmpType.Integer), Opt("max-bandwidth", QmpType.Integer));

        table.Register("query-migrate-parameters", _ =>
        {
            var p = migration.Parameters;
            return new JsonObject
            {
                ["downtime-limit"] = p.DowntimeLimitMs,
                ["max-bandwidth"] = p.MaxBandwidth,
            };
        });

        table.Register("migrate-incoming", call =>
        {
            Guard(() => migration.RequestIncoming(call.GetString("uri")!));
            return null;
        }, Req("uri", QmpType.String));
    }

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
