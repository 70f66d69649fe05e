using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using SlidePlugin.Engine.Analysis;
using SlidePlugin.Engine.Interop;
using SlidePlugin.Engine.Mil;

namespace SlidePlugin.Engine.Tests.Analysis;

/// <summary>The analysis store's file layout: today's schema, and stores written in the first layout (schema 0, embeddings per tile).</summary>
public sealed class AnalysisStoreTests : IDisposable
{
    private const string Key = "0123456789abcdef0123456789abcdef";
    private const int EmbeddingSize = 4;
    private readonly string _folder = Directory.CreateTempSubdirectory("slideplugin-store").FullName;

    /// <summary>
    /// These tests open SQLite files directly, and may be the first in the process to: the bundled SQLite must be
    /// loaded bound to itself before that, as AnalysisStore does, or it binds to Debian's libsqlite3 once another test
    /// has loaded OpenSlide, and the first open crashes the test host (seen in 1 of 5 full runs).
    /// </summary>
    public AnalysisStoreTests() => SqliteIsolation.Ensure();

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static AnalysisHeader Header(int tiles) =>
        new(Key, "/slides/a.svs", 1000, 800, 0.25, "m", "sha", ["benign", "malignant"], 0.5, 32, 64, 16, 13, tiles, 0);

    private static float[] EmbeddingOf(int index) => [index, index * 0.5f, -index, 1];

    private static TileScore TileOf(int index) => new(index, index * 64, 0, 64, 64, 0.5f * index, [0.4f, 0.6f]);

    private AnalysisStore CompleteOfThreeTiles()
    {
        var store = new AnalysisStore(Path.Combine(_folder, "analyses.sqlite"));
        store.Begin(Header(3));
        var pooling = new AttentionPooling(EmbeddingSize);
        for (int i = 0; i < 3; i++)
        {
            pooling.Add([0.5f * i], EmbeddingOf(i));
            store.AddTiles(Key, [TileOf(i)], pooling);
        }

        store.Complete(Key, [0, 1, 2], [0f, 0.5f, 1f], [0.2, 0.3, 0.5], [10, 50, 90], new StoredResult([0.25f, 0.75f], 1, 1.5, "2026-01-01T00:00:00Z"));
        return store;
    }

    private void Sql(string sql)
    {
        using var connection = new SqliteConnection($"Data Source={Path.Combine(_folder, "analyses.sqlite")};Pooling=False");
        connection.Open();
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    [Theory]
    [InlineData("DELETE FROM tiles WHERE idx = 1", "holds 2 of its 3 tiles")]
    [InlineData("UPDATE tiles SET probabilities = x'0102030405' WHERE idx = 2", "tile 2 of analysis 0123456789abcdef0123456789abcdef has 5 bytes of class probabilities, not 8")]
    public void Load_RowsThatContradictTheHeader_CorruptNamingTheFileAndTheProblem(string damage, string problem)
    {
        AnalysisStore store = CompleteOfThreeTiles();
        Sql(damage);

        var error = Assert.Throws<AnalysisStoreCorruptException>(() => store.Load(Key));

        Assert.Contains(store.Path, error.Message, StringComparison.Ordinal);
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Pooling_StateOfAnotherSize_CorruptNamingTheAnalysis()
    {
        AnalysisStore store = CompleteOfThreeTiles();

        var error = Assert.Throws<AnalysisStoreCorruptException>(() => store.Pooling(Key, EmbeddingSize + 1));

        Assert.Contains($"the pooling state of analysis {Key}", error.Message, StringComparison.Ordinal);
        Assert.Equal(3, store.Pooling(Key, EmbeddingSize)!.Count);
        Assert.Null(store.Pooling("another", EmbeddingSize));
    }

    [Fact]
    public void Open_FileThatIsNoDatabase_CorruptNamingTheFile()
    {
        string path = Path.Combine(_folder, "analyses.sqlite");
        File.WriteAllBytes(path, [.. Enumerable.Range(0, 8192).Select(i => (byte)(i * 31))]);

        var error = Assert.Throws<AnalysisStoreCorruptException>(() => new AnalysisStore(path));

        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Contains("Move it away", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_FirstLayoutStore_ConvertedWithItsTilesEmbeddingsAndResult()
    {
        string path = Path.Combine(_folder, "schema0.sqlite");
        WriteFirstLayout(path, tiles: 3, complete: true);

        var store = new AnalysisStore(path);

        AnalysisResult result = Assert.IsType<AnalysisResult>(store.Load(Key));
        Assert.Equal([0, 1, 2], result.Tiles.Select(t => t.Index));
        Assert.Equal([0.2, 0.3, 0.5], result.Tiles.Select(t => t.Attention));
        Assert.Equal([10.0, 50.0, 90.0], result.Tiles.Select(t => t.Percentile));
        Assert.Equal([0.5f, 0.5f], result.Tiles[2].Probabilities);
        Assert.Equal([0.25f, 0.75f], result.Probabilities);
        Assert.Equal(AnalysisStore.SchemaVersion, UserVersion(path));
        Assert.Equal(["analyses", "pooling", "tiles"], Tables(path));
        Assert.Equal(3, new AnalysisStore(path).List().Single().TilesScored); // opening it again changes nothing
    }

    [Fact]
    public void Open_FirstLayoutStoreInterrupted_ResumesFromThePoolingOfItsStoredEmbeddings()
    {
        string path = Path.Combine(_folder, "schema0.sqlite");
        WriteFirstLayout(path, tiles: 2, complete: false);
        var store = new AnalysisStore(path);

        AttentionPooling pooling = store.Pooling(Key, EmbeddingSize)!;
        Assert.Equal(2, pooling.Count);
        pooling.Add([1.0f], EmbeddingOf(2));
        store.AddTiles(Key, [TileOf(2)], pooling);

        Assert.Equal([0, 1, 2], store.ScoredIndices(Key).Order());
        Assert.Equal(["analyses", "pooling", "tiles"], Tables(path));
        // softmax(0, 0.5, 1) over the embeddings of EmbeddingOf, written out.
        double[] weights = [1, Math.Exp(0.5), Math.E];
        double total = weights.Sum();
        double[] expected = [.. Enumerable.Range(0, EmbeddingSize).Select(j => Enumerable.Range(0, 3).Sum(i => weights[i] / total * EmbeddingOf(i)[j]))];
        float[] pooled = store.Pooling(Key, EmbeddingSize)!.Pooled();
        for (int j = 0; j < EmbeddingSize; j++)
        {
            Assert.Equal(expected[j], pooled[j], 1e-6);
        }
    }

    [Fact]
    public void Open_NewerSchema_ClearErrorAndFileUntouched()
    {
        string path = Path.Combine(_folder, "future.sqlite");
        using (var connection = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            connection.Open();
            using SqliteCommand command = connection.CreateCommand();
            command.CommandText = "CREATE TABLE tiles (key TEXT); PRAGMA user_version = 99;";
            command.ExecuteNonQuery();
        }

        var error = Assert.Throws<InvalidOperationException>(() => new AnalysisStore(path));

        Assert.Contains("newer SlidePlugin", error.Message, StringComparison.Ordinal);
        Assert.Contains("schema 99", error.Message, StringComparison.Ordinal);
        Assert.Equal(99, UserVersion(path));
        Assert.Equal(["tiles"], Tables(path));
    }

    /// <summary>A store as the first version of <see cref="AnalysisStore"/> wrote it: the embedding inside the tile row, user_version 0.</summary>
    private static void WriteFirstLayout(string path, int tiles, bool complete)
    {
        using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        connection.Open();
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = """
            PRAGMA journal_mode = WAL;
            CREATE TABLE analyses (key TEXT PRIMARY KEY, header TEXT NOT NULL, created TEXT NOT NULL, result TEXT);
            CREATE TABLE tiles (
                key TEXT NOT NULL, idx INTEGER NOT NULL,
                x INTEGER NOT NULL, y INTEGER NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
                score REAL NOT NULL, probabilities BLOB NOT NULL, embedding BLOB NOT NULL,
                attention REAL, percentile REAL,
                PRIMARY KEY (key, idx)) WITHOUT ROWID;
            INSERT INTO analyses VALUES ($key, $header, '2026-01-01T00:00:00Z', $result);
            """;
        command.Parameters.AddWithValue("$key", Key);
        command.Parameters.AddWithValue("$header", JsonSerializer.Serialize(Header(3)));
        command.Parameters.AddWithValue("$result", complete ? JsonSerializer.Serialize(new StoredResult([0.25f, 0.75f], 1, 1.5, "2026-01-01T00:00:01Z")) : DBNull.Value);
        command.ExecuteNonQuery();
        double[] attention = [0.2, 0.3, 0.5], percentile = [10, 50, 90];
        for (int i = 0; i < tiles; i++)
        {
            using SqliteCommand tile = connection.CreateCommand();
            tile.CommandText = "INSERT INTO tiles VALUES ($key, $idx, $x, 0, 64, 64, $score, $probabilities, $embedding, $attention, $percentile)";
            tile.Parameters.AddWithValue("$key", Key);
            tile.Parameters.AddWithValue("$idx", i);
            tile.Parameters.AddWithValue("$x", i * 64);
            tile.Parameters.AddWithValue("$score", i * 0.5);
            tile.Parameters.AddWithValue("$probabilities", MemoryMarshal.AsBytes<float>([0.25f * i, 1 - (0.25f * i)]).ToArray());
            tile.Parameters.AddWithValue("$embedding", MemoryMarshal.AsBytes<float>(EmbeddingOf(i)).ToArray());
            tile.Parameters.AddWithValue("$attention", complete ? attention[i] : DBNull.Value);
            tile.Parameters.AddWithValue("$percentile", complete ? percentile[i] : DBNull.Value);
            tile.ExecuteNonQuery();
        }
    }

    private static long UserVersion(string path) => (long)Query(path, "PRAGMA user_version").Single();

    private static string[] Tables(string path) => [.. Query(path, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").Cast<string>()];

    private static List<object> Query(string path, string sql)
    {
        using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        connection.Open();
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        using SqliteDataReader reader = command.ExecuteReader();
        var values = new List<object>();
        while (reader.Read())
        {
            values.Add(reader.GetValue(0));
        }

        return values;
    }
}
