using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using SlidePlugin.Engine.Mil;

namespace SlidePlugin.Engine.Analysis;

/// <summary>A stored analysis as listed: its key, slide, model and state.</summary>
public sealed record StoredAnalysis(string Key, string SlidePath, string ModelName, int TileCount, int TilesScored, bool Complete, string Created, string? Finished);

/// <summary>
/// Analyses in one SQLite file (WAL): per analysis its header, the running attention pooling state and, when complete,
/// its result; per tile its score and class probabilities. An interrupted analysis resumes from the tiles and the pooling
/// state committed with them; tile embeddings are never stored (<see cref="AttentionPooling"/>). Every write is one
/// transaction: a crash loses nothing committed. Safe to use from several threads (one connection per call).
/// </summary>
/// <remarks>
/// Stores of earlier layouts are converted when opened: schema 0 kept each tile's embedding in its row, schema 1 in a
/// table of its own; an unfinished analysis of either gets its pooling state from them, then they are dropped.
/// </remarks>
public sealed class AnalysisStore
{
    private static readonly string[] TileColumns = ["$key", "$idx", "$x", "$y", "$width", "$height", "$score", "$probabilities", "$branch_scores"];
    private readonly string _connectionString;

    /// <summary>Opens (or creates) the store at <paramref name="path"/>.</summary>
    public AnalysisStore(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Interop.SqliteIsolation.Ensure();
        Path = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        _connectionString = new SqliteConnectionStringBuilder { DataSource = Path, Pooling = true }.ToString();
        Guarded(() =>
        {
            using SqliteConnection connection = Open();
            Execute(connection, "PRAGMA journal_mode = WAL;");
            using SqliteTransaction transaction = connection.BeginTransaction();
            long version = Scalar(connection, "PRAGMA user_version");
            if (version > SchemaVersion)
            {
                throw new InvalidOperationException($"'{Path}' was written by a newer SlidePlugin (store schema {version}; this one reads up to {SchemaVersion}).");
            }

            bool firstLayout = version == 0 && Scalar(connection, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'tiles'") == 1;
            Execute(connection, """
                CREATE TABLE IF NOT EXISTS analyses (
                    key TEXT PRIMARY KEY,
                    header TEXT NOT NULL,
                    created TEXT NOT NULL,
                    result TEXT);
                CREATE TABLE IF NOT EXISTS pooling (
                    key TEXT PRIMARY KEY,
                    state BLOB NOT NULL);
                """);
            if (firstLayout)
            {
                // Schema 0 kept the embedding in the tile row: move it out as schema 1 had it, then rebuild the tile table without it.
                Execute(connection, """
                    CREATE TABLE embeddings (key TEXT NOT NULL, idx INTEGER NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (key, idx)) WITHOUT ROWID;
                    INSERT INTO embeddings (key, idx, vector) SELECT key, idx, embedding FROM tiles;
                    ALTER TABLE tiles RENAME TO tiles_schema0;
                    """);
            }

            Execute(connection, """
                CREATE TABLE IF NOT EXISTS tiles (
                    key TEXT NOT NULL,
                    idx INTEGER NOT NULL,
                    x INTEGER NOT NULL, y INTEGER NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
                    score REAL NOT NULL,
                    probabilities BLOB NOT NULL,
                    attention REAL,
                    percentile REAL,
                    branch_scores BLOB,
                    PRIMARY KEY (key, idx)) WITHOUT ROWID;
                """);
            if (Scalar(connection, "SELECT COUNT(*) FROM pragma_table_info('tiles') WHERE name = 'branch_scores'") == 0)
            {
                Execute(connection, "ALTER TABLE tiles ADD COLUMN branch_scores BLOB;");
            }
            if (firstLayout)
            {
                Execute(connection, """
                    INSERT INTO tiles (key, idx, x, y, width, height, score, probabilities, attention, percentile)
                        SELECT key, idx, x, y, width, height, score, probabilities, attention, percentile FROM tiles_schema0;
                    DROP TABLE tiles_schema0;
                    """);
            }

            if (Scalar(connection, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'embeddings'") == 1)
            {
                PoolStoredEmbeddings(connection);
                Execute(connection, "DROP TABLE embeddings;");
            }

            Execute(connection, $"PRAGMA user_version = {SchemaVersion};");
            transaction.Commit();
        });
    }

    /// <summary>The layout this code writes; <c>PRAGMA user_version</c> records it in the file.</summary>
    public const int SchemaVersion = 2;

    /// <summary>The database file.</summary>
    public string Path { get; }

    /// <summary>Records the header of an analysis unless it is already there (a resumed analysis keeps its first).</summary>
    public void Begin(AnalysisHeader header)
    {
        Guarded(() =>
        {
            ArgumentNullException.ThrowIfNull(header);
            using SqliteConnection connection = Open();
            using SqliteCommand command = connection.CreateCommand();
            command.CommandText = "INSERT OR IGNORE INTO analyses (key, header, created) VALUES ($key, $header, $created)";
            command.Parameters.AddWithValue("$key", header.Key);
            command.Parameters.AddWithValue("$header", JsonSerializer.Serialize(header));
            command.Parameters.AddWithValue("$created", DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture));
            command.ExecuteNonQuery();
        });
    }

    /// <summary>Grid indices of the tiles of <paramref name="key"/> already scored.</summary>
    public HashSet<int> ScoredIndices(string key)
    {
        return Guarded(() =>
        {
            using SqliteConnection connection = Open();
            using SqliteCommand command = connection.CreateCommand();
            command.CommandText = "SELECT idx FROM tiles WHERE key = $key";
            command.Parameters.AddWithValue("$key", key);
            var indices = new HashSet<int>();
            using SqliteDataReader reader = command.ExecuteReader();
            while (reader.Read())
            {
                indices.Add(reader.GetInt32(0));
            }

            return indices;
        });
    }

    /// <summary>
    /// Stores a batch of scored tiles and the pooling state that includes them, in one transaction: what resumes the
    /// analysis is always the tiles and the state of the same moment.
    /// </summary>
    public void AddTiles(string key, IReadOnlyList<TileScore> tiles, AttentionPooling pooling)
    {
        Guarded(() =>
        {
            ArgumentNullException.ThrowIfNull(tiles);
            ArgumentNullException.ThrowIfNull(pooling);
            using SqliteConnection connection = Open();
            using SqliteTransaction transaction = connection.BeginTransaction();
            using (SqliteCommand command = connection.CreateCommand())
            {
                command.CommandText = """
                    INSERT OR REPLACE INTO tiles (key, idx, x, y, width, height, score, probabilities, branch_scores)
                    VALUES ($key, $idx, $x, $y, $width, $height, $score, $probabilities, $branch_scores)
                    """;
                SqliteParameter[] p = [.. TileColumns.Select(n => command.Parameters.AddWithValue(n, DBNull.Value))];
                p[0].Value = key;
                foreach (TileScore tile in tiles)
                {
                    p[1].Value = tile.Index;
                    p[2].Value = tile.X;
                    p[3].Value = tile.Y;
                    p[4].Value = tile.Width;
                    p[5].Value = tile.Height;
                    p[6].Value = (double)tile.Score;
                    p[7].Value = MemoryMarshal.AsBytes(tile.Probabilities.AsSpan()).ToArray();
                    p[8].Value = tile.BranchScores is { } branches ? MemoryMarshal.AsBytes(branches.AsSpan()).ToArray() : DBNull.Value;
                    command.ExecuteNonQuery();
                }
            }

            SavePooling(connection, key, pooling);
            transaction.Commit();
        });
    }

    /// <summary>The pooling state committed with the last batch of <paramref name="key"/>, or null when none is.</summary>
    /// <exception cref="AnalysisStoreCorruptException">The stored state is not one of <paramref name="branches"/> branches of embeddings of <paramref name="embeddingSize"/>.</exception>
    public AttentionPooling? Pooling(string key, int embeddingSize, int branches = 1)
    {
        return Guarded(() =>
        {
            using SqliteConnection connection = Open();
            using SqliteCommand command = connection.CreateCommand();
            command.CommandText = "SELECT state FROM pooling WHERE key = $key";
            command.Parameters.AddWithValue("$key", key);
            if (command.ExecuteScalar() is not byte[] state)
            {
                return null;
            }

            try
            {
                return AttentionPooling.FromBytes(state, embeddingSize, branches);
            }
            catch (FormatException e)
            {
                throw new AnalysisStoreCorruptException(Path, $"the pooling state of analysis {key}: {e.Message}", e);
            }
        });
    }

    private static void SavePooling(SqliteConnection connection, string key, AttentionPooling pooling)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = "INSERT OR REPLACE INTO pooling (key, state) VALUES ($key, $state)";
        command.Parameters.AddWithValue("$key", key);
        command.Parameters.AddWithValue("$state", pooling.ToBytes());
        command.ExecuteNonQuery();
    }

    /// <summary>
    /// Converts an earlier layout's stored embeddings of unfinished analyses into their pooling state, in grid order (a
    /// resumed analysis then differs from an uninterrupted one in the last bits of its pooled embedding only).
    /// </summary>
    private static void PoolStoredEmbeddings(SqliteConnection connection)
    {
        var unfinished = new List<string>();
        using (SqliteCommand keys = connection.CreateCommand())
        {
            keys.CommandText = "SELECT key FROM analyses WHERE result IS NULL";
            using SqliteDataReader reader = keys.ExecuteReader();
            while (reader.Read())
            {
                unfinished.Add(reader.GetString(0));
            }
        }

        foreach (string key in unfinished)
        {
            using SqliteCommand rows = connection.CreateCommand();
            rows.CommandText = "SELECT t.score, e.vector FROM tiles t JOIN embeddings e ON e.key = t.key AND e.idx = t.idx WHERE t.key = $key ORDER BY t.idx";
            rows.Parameters.AddWithValue("$key", key);
            AttentionPooling? pooling = null;
            using (SqliteDataReader reader = rows.ExecuteReader())
            {
                while (reader.Read())
                {
                    ReadOnlySpan<float> embedding = MemoryMarshal.Cast<byte, float>((byte[])reader.GetValue(1));
                    pooling ??= new AttentionPooling(embedding.Length);
                    pooling.Add([(float)reader.GetDouble(0)], embedding);
                }
            }

            if (pooling is not null)
            {
                SavePooling(connection, key, pooling);
            }
        }
    }

    /// <summary>Every tile of <paramref name="key"/> scored so far, by grid index (a late watcher's snapshot of a running analysis).</summary>
    public IReadOnlyList<TileScore> ScoredTiles(string key)
    {
        return Guarded<IReadOnlyList<TileScore>>(() =>
        {
            var tiles = new List<TileScore>();
            using SqliteConnection connection = Open();
            using SqliteCommand command = connection.CreateCommand();
            command.CommandText = "SELECT idx, x, y, width, height, score, probabilities FROM tiles WHERE key = $key ORDER BY idx";
            command.Parameters.AddWithValue("$key", key);
            using SqliteDataReader reader = command.ExecuteReader();
            while (reader.Read())
            {
                tiles.Add(new TileScore(reader.GetInt32(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4),
                    (float)reader.GetDouble(5), MemoryMarshal.Cast<byte, float>((byte[])reader.GetValue(6)).ToArray()));
            }

            return tiles;
        });
    }

    /// <summary>
    /// Raw scores of every stored tile of <paramref name="key"/>, by grid index: [N] for one branch, [N, B] row-major for
    /// <paramref name="branches"/> (CLAM-MB).
    /// </summary>
    public (int[] Indices, float[] Scores) Scores(string key, int branches = 1)
    {
        return Guarded<(int[], float[])>(() =>
        {
            var indices = new List<int>();
            var scores = new List<float>();
            using SqliteConnection connection = Open();
            using SqliteCommand command = connection.CreateCommand();
            command.CommandText = "SELECT idx, score, branch_scores FROM tiles WHERE key = $key ORDER BY idx";
            command.Parameters.AddWithValue("$key", key);
            using SqliteDataReader reader = command.ExecuteReader();
            while (reader.Read())
            {
                indices.Add(reader.GetInt32(0));
                if (branches == 1)
                {
                    scores.Add((float)reader.GetDouble(1));
                    continue;
                }

                byte[] blob = reader.IsDBNull(2) ? [] : (byte[])reader.GetValue(2);
                if (blob.Length != branches * sizeof(float))
                {
                    throw new AnalysisStoreCorruptException(Path, $"tile {reader.GetInt32(0)} of analysis {key} has {blob.Length} bytes of branch scores, not {branches * sizeof(float)}");
                }

                scores.AddRange(MemoryMarshal.Cast<byte, float>(blob));
            }

            return ([.. indices], [.. scores]);
        });
    }

    /// <summary>
    /// Writes score, attention and percentile of every tile and the result, in one transaction: the analysis is then
    /// complete. (The score changes only for CLAM-MB, whose final score is the predicted class's branch.)
    /// </summary>
    public void Complete(string key, IReadOnlyList<int> indices, IReadOnlyList<float> scores, IReadOnlyList<double> attention, IReadOnlyList<double> percentiles, StoredResult result)
    {
        Guarded(() =>
        {
            ArgumentNullException.ThrowIfNull(indices);
            using SqliteConnection connection = Open();
            using SqliteTransaction transaction = connection.BeginTransaction();
            using (SqliteCommand update = connection.CreateCommand())
            {
                update.CommandText = "UPDATE tiles SET score = $score, attention = $attention, percentile = $percentile WHERE key = $key AND idx = $idx";
                update.Parameters.AddWithValue("$key", key);
                SqliteParameter idx = update.Parameters.Add("$idx", SqliteType.Integer);
                SqliteParameter score = update.Parameters.Add("$score", SqliteType.Real);
                SqliteParameter a = update.Parameters.Add("$attention", SqliteType.Real);
                SqliteParameter p = update.Parameters.Add("$percentile", SqliteType.Real);
                for (int i = 0; i < indices.Count; i++)
                {
                    idx.Value = indices[i];
                    score.Value = (double)scores[i];
                    a.Value = attention[i];
                    p.Value = percentiles[i];
                    update.ExecuteNonQuery();
                }
            }

            using (SqliteCommand finish = connection.CreateCommand())
            {
                finish.CommandText = "UPDATE analyses SET result = $result WHERE key = $key";
                finish.Parameters.AddWithValue("$key", key);
                finish.Parameters.AddWithValue("$result", JsonSerializer.Serialize(result));
                finish.ExecuteNonQuery();
            }

            transaction.Commit();
        });
    }

    /// <summary>The finished analysis <paramref name="key"/>, or null when it is unknown or not complete.</summary>
    public AnalysisResult? Load(string key)
    {
        return Guarded(() =>
        {
            using SqliteConnection connection = Open();
            AnalysisHeader header;
            StoredResult stored;
            using (SqliteCommand command = connection.CreateCommand())
            {
                command.CommandText = "SELECT header, result FROM analyses WHERE key = $key AND result IS NOT NULL";
                command.Parameters.AddWithValue("$key", key);
                using SqliteDataReader reader = command.ExecuteReader();
                if (!reader.Read())
                {
                    return null;
                }

                header = JsonSerializer.Deserialize<AnalysisHeader>(reader.GetString(0))!;
                stored = JsonSerializer.Deserialize<StoredResult>(reader.GetString(1))!;
            }

            var tiles = new List<AnalyzedTile>(header.TileCount);
            using (SqliteCommand command = connection.CreateCommand())
            {
                command.CommandText = "SELECT idx, x, y, width, height, score, probabilities, attention, percentile FROM tiles WHERE key = $key ORDER BY idx";
                command.Parameters.AddWithValue("$key", key);
                using SqliteDataReader reader = command.ExecuteReader();
                while (reader.Read())
                {
                    var blob = (byte[])reader.GetValue(6);
                    if (blob.Length != header.Classes.Count * sizeof(float))
                    {
                        throw new AnalysisStoreCorruptException(Path, $"tile {reader.GetInt32(0)} of analysis {key} has {blob.Length} bytes of class probabilities, not {header.Classes.Count * sizeof(float)}");
                    }

                    float[] probabilities = MemoryMarshal.Cast<byte, float>(blob).ToArray();
                    tiles.Add(new AnalyzedTile(reader.GetInt32(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4),
                        (float)reader.GetDouble(5), probabilities, reader.GetDouble(7), reader.GetDouble(8)));
                }
            }

            if (tiles.Count != header.TileCount)
            {
                throw new AnalysisStoreCorruptException(Path, $"analysis {key} holds {tiles.Count} of its {header.TileCount} tiles");
            }

            return new AnalysisResult(header, stored.Probabilities, stored.PredictedClass, tiles, stored.Seconds, stored.Finished, FromStore: true);
        });
    }

    /// <summary>Every stored analysis, newest first.</summary>
    public IReadOnlyList<StoredAnalysis> List()
    {
        return Guarded(() =>
        {
            using SqliteConnection connection = Open();
            using SqliteCommand command = connection.CreateCommand();
            command.CommandText = """
                SELECT a.key, a.header, a.created, a.result, (SELECT COUNT(*) FROM tiles t WHERE t.key = a.key)
                FROM analyses a ORDER BY a.created DESC
                """;
            using SqliteDataReader reader = command.ExecuteReader();
            var analyses = new List<StoredAnalysis>();
            while (reader.Read())
            {
                AnalysisHeader header = JsonSerializer.Deserialize<AnalysisHeader>(reader.GetString(1))!;
                StoredResult? result = reader.IsDBNull(3) ? null : JsonSerializer.Deserialize<StoredResult>(reader.GetString(3));
                analyses.Add(new StoredAnalysis(header.Key, header.SlidePath, header.ModelName, header.TileCount, reader.GetInt32(4), result is not null, reader.GetString(2), result?.Finished));
            }

            return analyses;
        });
    }

    /// <summary>
    /// Runs <paramref name="work"/>, turning SQLite's "corrupt" and "not a database" into <see cref="AnalysisStoreCorruptException"/>
    /// naming the file, so that callers answer with one clear error (DATA_LOSS) instead of a stack trace.
    /// </summary>
    private T Guarded<T>(Func<T> work)
    {
        try
        {
            return work();
        }
        catch (SqliteException e) when (e.SqliteErrorCode is SqliteCorrupt or SqliteNotADatabase)
        {
            throw new AnalysisStoreCorruptException(Path, e.Message, e);
        }
    }

    private void Guarded(Action work) => Guarded(() =>
    {
        work();
        return 0;
    });

    private const int SqliteCorrupt = 11, SqliteNotADatabase = 26;

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        Execute(connection, "PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;");
        return connection;
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static long Scalar(SqliteConnection connection, string sql)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }
}

/// <summary>The slide-level part of a finished analysis, as stored.</summary>
public sealed record StoredResult(float[] Probabilities, int PredictedClass, double Seconds, string Finished);

/// <summary>The analysis store file is damaged: SQLite reports corruption, or its rows contradict each other.</summary>
public sealed class AnalysisStoreCorruptException : Exception
{
    /// <summary>Creates the exception for the store at <paramref name="path"/>.</summary>
    public AnalysisStoreCorruptException(string path, string problem, Exception? inner = null)
        : base($"The analysis store '{path}' is damaged ({problem}). Move it away to start a new one (its analyses are then run again), or restore it from a copy.", inner)
    {
        StorePath = path;
    }

    /// <summary>Creates the exception.</summary>
    public AnalysisStoreCorruptException() { }

    /// <summary>Creates the exception.</summary>
    public AnalysisStoreCorruptException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public AnalysisStoreCorruptException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>The store file.</summary>
    public string StorePath { get; } = "";
}
