//! The artifact store suite, run on every backend (local folder, in-memory object store, and S3 on a
//! moto server started here), then the local backend's own cases (symlinks that leave the root,
//! temporary files, a large streamed file) and S3's (MLflow's keys, presigned multipart uploads,
//! secrets kept out of errors and logs).
//!
//! The S3 cases need `moto_server`: `$FERROFLOW_MOTO_SERVER`, else `<repo>/.venv/bin/moto_server` (made
//! by `scripts/python-env`). Without it they print SKIPPED, except under `CI=true`, where they fail.
//!
//! Azure and GCS run only against an emulator someone started, and print SKIPPED otherwise (CI too):
//! `FERROFLOW_TEST_AZURE_CONNECTION_STRING` (Azurite's connection string; container `ferroflow-test`
//! must exist) and `FERROFLOW_TEST_GCS_EMULATOR` (`STORAGE_EMULATOR_HOST` of an emulator with a bucket
//! `ferroflow-test`).

#![cfg(test)]

use bytes::Bytes;
use ferroflow_artifacts::{
    ArtifactEntry, ArtifactKind, ArtifactStore, LocalArtifactStore, ObjectStoreArtifactStore,
    UploadStream,
};
use ferroflow_core::artifact_path::ArtifactPath;
use ferroflow_proto::ErrorCode;
use futures::StreamExt;
use std::sync::Arc;

fn path(raw: &str) -> ArtifactPath {
    ArtifactPath::parse(raw).unwrap()
}

fn body(chunks: &[&[u8]]) -> UploadStream {
    let chunks: Vec<std::io::Result<Bytes>> = chunks
        .iter()
        .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

/// A body that sends `chunk` and then fails, like a client that disconnects mid-upload.
fn failing_body(chunk: &[u8]) -> UploadStream {
    let chunks = vec![
        Ok(Bytes::copy_from_slice(chunk)),
        Err(std::io::Error::other("connection reset")),
    ];
    futures::stream::iter(chunks).boxed()
}

async fn read_all(store: &dyn ArtifactStore, artifact: &str) -> Vec<u8> {
    let download = store.get(&path(artifact)).await.unwrap();
    let mut content = Vec::new();
    let mut stream = download.stream;
    while let Some(chunk) = stream.next().await {
        content.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(
        content.len() as u64,
        download.size,
        "announced size of {artifact}"
    );
    content
}

fn file(name: &str, size: u64) -> ArtifactEntry {
    ArtifactEntry {
        name: name.to_owned(),
        is_dir: false,
        size: Some(size),
    }
}

fn directory(name: &str) -> ArtifactEntry {
    ArtifactEntry {
        name: name.to_owned(),
        is_dir: true,
        size: None,
    }
}

/// The cases every backend must pass.
mod suite {
    use super::*;

    pub async fn round_trip(store: &dyn ArtifactStore) {
        store
            .put(&path("1/run/artifacts/a.txt"), body(&[b"hello ", b"world"]))
            .await
            .unwrap();
        assert_eq!(
            read_all(store, "1/run/artifacts/a.txt").await,
            b"hello world"
        );
    }

    pub async fn empty_file_round_trips(store: &dyn ArtifactStore) {
        store.put(&path("empty.txt"), body(&[])).await.unwrap();
        assert_eq!(read_all(store, "empty.txt").await, b"");
        assert_eq!(
            store.head(&path("empty.txt")).await.unwrap(),
            Some(ArtifactKind::File { size: 0 })
        );
    }

    pub async fn put_overwrites(store: &dyn ArtifactStore) {
        store
            .put(&path("dir/a.txt"), body(&[b"first version"]))
            .await
            .unwrap();
        store
            .put(&path("dir/a.txt"), body(&[b"second"]))
            .await
            .unwrap();
        assert_eq!(read_all(store, "dir/a.txt").await, b"second");
    }

    pub async fn special_names_round_trip(store: &dyn ArtifactStore) {
        let name = "with space/100%/ü;x?=[1]~{2}.txt";
        store.put(&path(name), body(&[b"x"])).await.unwrap();
        assert_eq!(read_all(store, name).await, b"x");
        assert_eq!(
            store.list(&path("with space")).await.unwrap(),
            Some(vec![directory("100%")])
        );
        assert_eq!(
            store.list(&path("with space/100%")).await.unwrap(),
            Some(vec![file("ü;x?=[1]~{2}.txt", 1)])
        );
    }

    pub async fn get_missing_is_not_found(store: &dyn ArtifactStore) {
        let error = store.get(&path("nope/missing.txt")).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::ResourceDoesNotExist);
        assert_eq!(error.message, "No such artifact: 'nope/missing.txt'");
    }

    pub async fn get_directory_is_refused(store: &dyn ArtifactStore) {
        store
            .put(&path("model/MLmodel"), body(&[b"flavors: {}"]))
            .await
            .unwrap();
        let error = store.get(&path("model")).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidParameterValue);
        assert_eq!(
            error.message,
            "Artifact path refers to a directory, not a file: 'model'"
        );
    }

    pub async fn list_shapes(store: &dyn ArtifactStore) {
        store
            .put(&path("1/r/artifacts/model/MLmodel"), body(&[b"12345"]))
            .await
            .unwrap();
        store
            .put(&path("1/r/artifacts/model/conda.yaml"), body(&[b"abc"]))
            .await
            .unwrap();
        store
            .put(&path("1/r/artifacts/b.txt"), body(&[b"bb"]))
            .await
            .unwrap();
        store
            .put(&path("1/r/artifacts/a.txt"), body(&[b"a"]))
            .await
            .unwrap();

        assert_eq!(
            store.list(&path("1/r/artifacts")).await.unwrap(),
            Some(vec![file("a.txt", 1), file("b.txt", 2), directory("model")])
        );
        assert_eq!(
            store.list(&path("1/r/artifacts/model/")).await.unwrap(),
            Some(vec![file("MLmodel", 5), file("conda.yaml", 3)])
        );
        assert_eq!(
            store.list(&ArtifactPath::root()).await.unwrap(),
            Some(vec![directory("1")])
        );
        assert_eq!(
            store.list(&path("1/r/artifacts/a.txt")).await.unwrap(),
            None,
            "a file"
        );
        assert_eq!(
            store.list(&path("1/r/artifacts/nope")).await.unwrap(),
            None,
            "missing"
        );
        assert_eq!(
            store
                .list(&path("1/r/artifacts/a.txt/below"))
                .await
                .unwrap(),
            None,
            "below a file"
        );
    }

    pub async fn empty_root_lists_nothing(store: &dyn ArtifactStore) {
        let listing = store.list(&ArtifactPath::root()).await.unwrap();
        assert_eq!(listing.unwrap_or_default(), vec![]);
    }

    pub async fn head_reports_kind(store: &dyn ArtifactStore) {
        store.put(&path("d/f.bin"), body(&[b"1234"])).await.unwrap();
        assert_eq!(
            store.head(&path("d/f.bin")).await.unwrap(),
            Some(ArtifactKind::File { size: 4 })
        );
        assert_eq!(
            store.head(&path("d")).await.unwrap(),
            Some(ArtifactKind::Directory)
        );
        assert_eq!(
            store.head(&ArtifactPath::root()).await.unwrap(),
            Some(ArtifactKind::Directory)
        );
        assert_eq!(store.head(&path("d/missing")).await.unwrap(), None);
    }

    pub async fn delete_file(store: &dyn ArtifactStore) {
        store.put(&path("d/keep.txt"), body(&[b"k"])).await.unwrap();
        store.put(&path("d/gone.txt"), body(&[b"g"])).await.unwrap();
        store.delete(&path("d/gone.txt")).await.unwrap();
        assert_eq!(
            store.list(&path("d")).await.unwrap(),
            Some(vec![file("keep.txt", 1)])
        );
        assert_eq!(
            store.get(&path("d/gone.txt")).await.unwrap_err().code,
            ErrorCode::ResourceDoesNotExist
        );
    }

    pub async fn delete_directory_recursively(store: &dyn ArtifactStore) {
        store
            .put(&path("1/r/artifacts/model/MLmodel"), body(&[b"m"]))
            .await
            .unwrap();
        store
            .put(&path("1/r/artifacts/model/sub/deep.txt"), body(&[b"d"]))
            .await
            .unwrap();
        store
            .put(&path("1/r/artifacts/other.txt"), body(&[b"o"]))
            .await
            .unwrap();
        store
            .put(&path("1/r/artifacts/modelx.txt"), body(&[b"x"]))
            .await
            .unwrap();
        store.delete(&path("1/r/artifacts/model")).await.unwrap();
        assert_eq!(
            store.list(&path("1/r/artifacts")).await.unwrap(),
            Some(vec![file("modelx.txt", 1), file("other.txt", 1)])
        );
        assert_eq!(
            store
                .head(&path("1/r/artifacts/model/sub/deep.txt"))
                .await
                .unwrap(),
            None
        );
    }

    pub async fn delete_missing_is_ok(store: &dyn ArtifactStore) {
        store.delete(&path("never/was.txt")).await.unwrap();
        store.delete(&path("never")).await.unwrap();
    }

    pub async fn delete_root_is_refused(store: &dyn ArtifactStore) {
        store.put(&path("a.txt"), body(&[b"a"])).await.unwrap();
        let error = store.delete(&ArtifactPath::root()).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidParameterValue);
        assert_eq!(read_all(store, "a.txt").await, b"a");
    }

    pub async fn put_root_is_refused(store: &dyn ArtifactStore) {
        let error = store
            .put(&ArtifactPath::root(), body(&[b"a"]))
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidParameterValue);
    }

    pub async fn failed_upload_leaves_nothing(store: &dyn ArtifactStore) {
        let error = store
            .put(&path("d/partial.bin"), failing_body(b"half of it"))
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::BadRequest);
        assert_eq!(store.head(&path("d/partial.bin")).await.unwrap(), None);
        let listing = store.list(&path("d")).await.unwrap().unwrap_or_default();
        assert_eq!(listing, vec![], "no temporary file may show");
    }

    pub async fn failed_upload_keeps_old_content(store: &dyn ArtifactStore) {
        store.put(&path("d/a.txt"), body(&[b"old"])).await.unwrap();
        store
            .put(&path("d/a.txt"), failing_body(b"new and broken"))
            .await
            .unwrap_err();
        assert_eq!(read_all(store, "d/a.txt").await, b"old");
        assert_eq!(
            store.list(&path("d")).await.unwrap(),
            Some(vec![file("a.txt", 3)])
        );
    }

    pub async fn download_is_chunked(store: &dyn ArtifactStore) {
        let chunk = vec![7u8; 300 * 1024];
        store
            .put(&path("big.bin"), body(&[&chunk, &chunk, &chunk]))
            .await
            .unwrap();
        let download = store.get(&path("big.bin")).await.unwrap();
        assert_eq!(download.size, 900 * 1024);
        let chunks: Vec<Bytes> = download.stream.map(Result::unwrap).collect().await;
        assert_eq!(chunks.iter().map(Bytes::len).sum::<usize>(), 900 * 1024);
        assert!(chunks
            .iter()
            .all(|chunk| chunk.iter().all(|byte| *byte == 7)));
    }
}

/// Runs each suite case on a fresh store of every backend.
macro_rules! artifact_store_suite {
    ($($case:ident),+ $(,)?) => {
        mod local_backend {
            $(
                #[tokio::test]
                async fn $case() {
                    let directory = tempfile::tempdir().unwrap();
                    let store = ferroflow_artifacts::LocalArtifactStore::new(directory.path().join("root"))
                        .await
                        .unwrap();
                    super::suite::$case(&store).await;
                }
            )+
        }

        mod object_store_backend {
            $(
                #[tokio::test]
                async fn $case() {
                    let store = super::memory_store();
                    super::suite::$case(&store).await;
                }
            )+
        }

        mod s3_backend {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(store) = super::s3::store(stringify!($case)).await else {
                        return;
                    };
                    super::suite::$case(&*store).await;
                }
            )+
        }

        mod azure_backend {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(store) = super::emulated::azure_store(stringify!($case)).await else {
                        return;
                    };
                    super::suite::$case(&*store).await;
                }
            )+
        }

        mod gcs_backend {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(store) = super::emulated::gcs_store(stringify!($case)).await else {
                        return;
                    };
                    super::suite::$case(&*store).await;
                }
            )+
        }
    };
}

fn memory_store() -> ObjectStoreArtifactStore {
    let memory: Arc<dyn object_store::ObjectStore> =
        Arc::new(object_store::memory::InMemory::new());
    ObjectStoreArtifactStore::new(memory, object_store::path::Path::from("artifacts/root"))
}

artifact_store_suite!(
    round_trip,
    empty_file_round_trips,
    put_overwrites,
    special_names_round_trip,
    get_missing_is_not_found,
    get_directory_is_refused,
    list_shapes,
    empty_root_lists_nothing,
    head_reports_kind,
    delete_file,
    delete_directory_recursively,
    delete_missing_is_ok,
    delete_root_is_refused,
    put_root_is_refused,
    failed_upload_leaves_nothing,
    failed_upload_keeps_old_content,
    download_is_chunked,
);

/// The local backend's own cases.
mod local {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::path::Path;

    struct Fixture {
        // Held for its Drop: the directory lives as long as the fixture.
        _directory: tempfile::TempDir,
        store: LocalArtifactStore,
        /// A directory beside the root, with `secret.txt` in it, that no call may reach.
        outside: std::path::PathBuf,
    }

    async fn fixture() -> Fixture {
        let directory = tempfile::tempdir().unwrap();
        let outside = directory.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret.txt"), b"secret").unwrap();
        let store = LocalArtifactStore::new(directory.path().join("root"))
            .await
            .unwrap();
        Fixture {
            _directory: directory,
            store,
            outside,
        }
    }

    fn names_in(directory: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(directory)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn assert_outside_untouched(fixture: &Fixture) {
        assert_eq!(names_in(&fixture.outside), ["secret.txt"]);
        assert_eq!(
            std::fs::read(fixture.outside.join("secret.txt")).unwrap(),
            b"secret"
        );
    }

    fn assert_outside_root(error: ferroflow_core::Error) {
        assert_eq!(error.code, ErrorCode::InvalidParameterValue);
        assert_eq!(
            error.message,
            "Invalid path: resolved path is outside the artifact directory"
        );
    }

    #[tokio::test]
    async fn new_creates_a_missing_root_and_canonicalizes_it() {
        let directory = tempfile::tempdir().unwrap();
        let store = LocalArtifactStore::new(directory.path().join("a/b/../c"))
            .await
            .unwrap();
        assert!(store.root().is_absolute());
        assert_eq!(
            store.root(),
            directory.path().canonicalize().unwrap().join("a/c")
        );
    }

    #[tokio::test]
    async fn failed_upload_removes_the_directories_it_created() {
        let fixture = fixture().await;
        fixture
            .store
            .put(&path("kept/a.txt"), body(&[b"a"]))
            .await
            .unwrap();
        for artifact in ["new/deep/dir/x.bin", "kept/new/x.bin"] {
            let error = fixture
                .store
                .put(&path(artifact), failing_body(b"half"))
                .await
                .unwrap_err();
            assert_eq!(error.code, ErrorCode::BadRequest);
        }
        // Only what existed before the failed uploads is left: no empty directory shows in listings.
        assert_eq!(names_in(fixture.store.root()), ["kept"]);
        assert_eq!(names_in(&fixture.store.root().join("kept")), ["a.txt"]);
        // A directory created by an upload that succeeded stays.
        fixture
            .store
            .put(&path("new/deep/y.txt"), body(&[b"y"]))
            .await
            .unwrap();
        assert_eq!(names_in(&fixture.store.root().join("new/deep")), ["y.txt"]);
    }

    #[tokio::test]
    async fn files_land_at_mlflow_layout() {
        let fixture = fixture().await;
        fixture
            .store
            .put(&path("1/run/artifacts/a b%20.txt"), body(&[b"x"]))
            .await
            .unwrap();
        let on_disk = fixture.store.root().join("1/run/artifacts/a b%20.txt");
        assert_eq!(std::fs::read(on_disk).unwrap(), b"x");
    }

    #[tokio::test]
    async fn existing_files_written_by_mlflow_are_served() {
        let fixture = fixture().await;
        let model = fixture.store.root().join("0/abc/artifacts/model");
        std::fs::create_dir_all(&model).unwrap();
        std::fs::write(model.join("MLmodel"), b"artifact_path: model").unwrap();
        assert_eq!(
            read_all(&fixture.store, "0/abc/artifacts/model/MLmodel").await,
            b"artifact_path: model"
        );
        assert_eq!(
            fixture.store.list(&path("0/abc/artifacts")).await.unwrap(),
            Some(vec![directory("model")])
        );
    }

    #[tokio::test]
    async fn symlinked_directory_out_of_root_is_refused() {
        let fixture = fixture().await;
        symlink(&fixture.outside, fixture.store.root().join("link")).unwrap();

        assert_outside_root(
            fixture
                .store
                .get(&path("link/secret.txt"))
                .await
                .unwrap_err(),
        );
        assert_outside_root(fixture.store.list(&path("link")).await.unwrap_err());
        assert_outside_root(
            fixture
                .store
                .head(&path("link/secret.txt"))
                .await
                .unwrap_err(),
        );
        assert_outside_root(
            fixture
                .store
                .put(&path("link/new.txt"), body(&[b"x"]))
                .await
                .unwrap_err(),
        );
        assert_outside_root(
            fixture
                .store
                .put(&path("link/sub/new.txt"), body(&[b"x"]))
                .await
                .unwrap_err(),
        );
        assert_outside_root(
            fixture
                .store
                .delete(&path("link/secret.txt"))
                .await
                .unwrap_err(),
        );
        assert_outside_untouched(&fixture);

        // Deleting the link removes the link, never what it points at.
        fixture.store.delete(&path("link")).await.unwrap();
        assert!(std::fs::symlink_metadata(fixture.store.root().join("link")).is_err());
        assert_outside_untouched(&fixture);
    }

    #[tokio::test]
    async fn symlinked_file_out_of_root_is_refused() {
        let fixture = fixture().await;
        std::fs::create_dir(fixture.store.root().join("d")).unwrap();
        symlink(
            fixture.outside.join("secret.txt"),
            fixture.store.root().join("d/leak.txt"),
        )
        .unwrap();

        assert_outside_root(fixture.store.get(&path("d/leak.txt")).await.unwrap_err());
        assert_outside_root(fixture.store.head(&path("d/leak.txt")).await.unwrap_err());
        assert_eq!(
            fixture.store.list(&path("d")).await.unwrap(),
            Some(vec![]),
            "escaping links are not listed"
        );

        // Overwriting replaces the link itself; the file it pointed at keeps its content.
        fixture
            .store
            .put(&path("d/leak.txt"), body(&[b"replaced"]))
            .await
            .unwrap();
        assert_eq!(read_all(&fixture.store, "d/leak.txt").await, b"replaced");
        assert_outside_untouched(&fixture);
    }

    #[tokio::test]
    async fn symlink_to_the_root_itself_cannot_wipe_it() {
        let fixture = fixture().await;
        fixture
            .store
            .put(&path("keep.txt"), body(&[b"k"]))
            .await
            .unwrap();
        symlink(fixture.store.root(), fixture.store.root().join("self")).unwrap();
        fixture.store.delete(&path("self")).await.unwrap();
        assert_eq!(read_all(&fixture.store, "keep.txt").await, b"k");
    }

    #[tokio::test]
    async fn symlinks_inside_the_root_are_followed() {
        let fixture = fixture().await;
        fixture
            .store
            .put(&path("real/a.txt"), body(&[b"a"]))
            .await
            .unwrap();
        symlink(
            fixture.store.root().join("real"),
            fixture.store.root().join("alias"),
        )
        .unwrap();
        assert_eq!(read_all(&fixture.store, "alias/a.txt").await, b"a");
        assert_eq!(
            fixture.store.list(&path("alias")).await.unwrap(),
            Some(vec![file("a.txt", 1)])
        );
        fixture
            .store
            .put(&path("alias/b.txt"), body(&[b"b"]))
            .await
            .unwrap();
        assert_eq!(read_all(&fixture.store, "real/b.txt").await, b"b");
        assert_eq!(
            fixture.store.list(&ArtifactPath::root()).await.unwrap(),
            Some(vec![directory("alias"), directory("real")])
        );
    }

    #[tokio::test]
    async fn writing_below_a_file_is_refused() {
        let fixture = fixture().await;
        fixture
            .store
            .put(&path("a.txt"), body(&[b"a"]))
            .await
            .unwrap();
        let error = fixture
            .store
            .put(&path("a.txt/b.txt"), body(&[b"b"]))
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidParameterValue);
        let error = fixture.store.get(&path("a.txt/b.txt")).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::ResourceDoesNotExist);
    }

    #[tokio::test]
    async fn writing_over_a_directory_is_refused() {
        let fixture = fixture().await;
        fixture
            .store
            .put(&path("d/a.txt"), body(&[b"a"]))
            .await
            .unwrap();
        let error = fixture
            .store
            .put(&path("d"), body(&[b"b"]))
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidParameterValue);
        assert_eq!(read_all(&fixture.store, "d/a.txt").await, b"a");
    }

    #[tokio::test]
    async fn temporary_names_are_reserved_and_hidden() {
        let fixture = fixture().await;
        let error = fixture
            .store
            .put(&path("d/.artifact.uploading.x"), body(&[b"x"]))
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidParameterValue);
        std::fs::create_dir(fixture.store.root().join("d")).unwrap();
        std::fs::write(
            fixture.store.root().join("d/.artifact.uploading.stale"),
            b"x",
        )
        .unwrap();
        std::fs::write(fixture.store.root().join("d/visible.txt"), b"x").unwrap();
        assert_eq!(
            fixture.store.list(&path("d")).await.unwrap(),
            Some(vec![file("visible.txt", 1)])
        );
    }

    #[tokio::test]
    async fn failed_upload_removes_its_temporary_file() {
        let fixture = fixture().await;
        fixture
            .store
            .put(&path("d/a.txt"), failing_body(b"partial"))
            .await
            .unwrap_err();
        // Neither the temporary file nor the directory the upload created is left.
        assert_eq!(names_in(fixture.store.root()), Vec::<String>::new());
    }

    #[tokio::test]
    async fn cancelled_upload_removes_its_temporary_file() {
        let fixture = fixture().await;
        let (sender, receiver) = futures::channel::mpsc::unbounded::<std::io::Result<Bytes>>();
        sender
            .unbounded_send(Ok(Bytes::from_static(b"first chunk")))
            .unwrap();
        // The sender stays open, so the upload waits for more until it is cancelled.
        let target = path("d/a.txt");
        let upload = fixture.store.put(&target, receiver.boxed());
        let outcome = tokio::time::timeout(std::time::Duration::from_millis(300), upload).await;
        assert!(outcome.is_err(), "the upload should still be waiting");
        // Neither the temporary file nor the directory the upload created is left.
        assert_eq!(names_in(fixture.store.root()), Vec::<String>::new());
        drop(sender);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn special_files_are_not_read() {
        let fixture = fixture().await;
        let fifo = fixture.store.root().join("pipe");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status();
        let Ok(status) = status else {
            eprintln!("SKIPPED special_files_are_not_read: mkfifo is not available");
            return;
        };
        assert!(status.success());
        let error = fixture.store.get(&path("pipe")).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidParameterValue);
        assert_eq!(
            fixture.store.list(&ArtifactPath::root()).await.unwrap(),
            Some(vec![])
        );
    }

    /// A 200 MiB body generated on the fly is written and read back without the process's memory
    /// growing by anything near its size.
    #[tokio::test]
    async fn large_file_streams_with_flat_memory() {
        let fixture = fixture().await;
        super::large_file_streams_with_flat_memory(&fixture.store, 200, 64).await;
    }
}

const MIB: usize = 1024 * 1024;

/// The large-file tests measure the process's peak memory: one at a time.
static LARGE_FILE_TEST: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One MiB of varied bytes; chunk `n` of a large file is this with `n` in its first eight bytes.
fn template() -> Vec<u8> {
    (0..MIB)
        .map(|index| (index.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn expected_chunk(template: &[u8], index: usize) -> Vec<u8> {
    let mut chunk = template.to_vec();
    chunk[..8].copy_from_slice(&(index as u64).to_le_bytes());
    chunk
}

/// The process's peak resident memory in KiB, from `/proc/self/status`.
fn peak_resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A `size_mib` body generated on the fly is written and read back byte-exact without the process's
/// peak memory growing by `limit_mib` or more.
async fn large_file_streams_with_flat_memory(
    store: &dyn ArtifactStore,
    size_mib: usize,
    limit_mib: u64,
) {
    let _one_at_a_time = LARGE_FILE_TEST.lock().await;
    let template = Arc::new(template());
    let peak_before = peak_resident_kib();

    let generator = Arc::clone(&template);
    let upload = futures::stream::iter(0..size_mib)
        .map(move |index| Ok(Bytes::from(expected_chunk(&generator, index))))
        .boxed();
    store
        .put(&path("1/run/artifacts/large.bin"), upload)
        .await
        .unwrap();

    let download = store.get(&path("1/run/artifacts/large.bin")).await.unwrap();
    assert_eq!(download.size, (size_mib * MIB) as u64);
    let mut stream = download.stream;
    let mut pending = Vec::with_capacity(MIB);
    let mut index = 0;
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.unwrap();
        while !chunk.is_empty() {
            let take = chunk.len().min(MIB - pending.len());
            pending.extend_from_slice(&chunk.split_to(take));
            if pending.len() == MIB {
                assert!(
                    pending == expected_chunk(&template, index),
                    "MiB {index} differs"
                );
                pending.clear();
                index += 1;
            }
        }
    }
    assert_eq!(index, size_mib);
    assert!(pending.is_empty());

    match (peak_before, peak_resident_kib()) {
        (Some(before), Some(after)) => {
            let growth_mib = after.saturating_sub(before) / 1024;
            assert!(
                growth_mib < limit_mib,
                "peak memory grew by {growth_mib} MiB for a {size_mib} MiB file"
            );
        }
        _ => eprintln!("SKIPPED the memory check of a large file: no /proc"),
    }
}

/// S3 on a moto server, started once for this test binary and stopped when it exits.
mod s3 {
    use super::*;
    use ferroflow_artifacts::{open_artifact_store, CloudSettings, UploadedPart};
    use std::io::{Read, Write};
    use std::path::PathBuf;
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    pub const BUCKET: &str = "ferroflow-test";

    /// moto's endpoint, or `None` (after a loud skip) when there is no moto outside CI.
    pub fn endpoint() -> Option<&'static str> {
        static SERVER: OnceLock<Option<String>> = OnceLock::new();
        SERVER.get_or_init(start).as_deref()
    }

    fn moto_binary() -> Option<PathBuf> {
        if let Some(binary) = std::env::var_os("FERROFLOW_MOTO_SERVER") {
            return Some(PathBuf::from(binary));
        }
        let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server");
        venv.is_file().then_some(venv)
    }

    fn start() -> Option<String> {
        let Some(binary) = moto_binary() else {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI=true but no moto_server: run scripts/python-env (or set FERROFLOW_MOTO_SERVER)"
            );
            eprintln!(
                "SKIPPED every S3 test: no moto_server in .venv (run scripts/python-env, or set \
                 FERROFLOW_MOTO_SERVER)"
            );
            return None;
        };
        for _attempt in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            // A shell watchdog stops moto once this test process is gone.
            let script = format!(
                "\"$0\" -H 127.0.0.1 -p {port} >/dev/null 2>&1 & moto=$!; \
                 while kill -0 {parent} 2>/dev/null && kill -0 $moto 2>/dev/null; do sleep 0.5; done; \
                 kill $moto 2>/dev/null",
                parent = std::process::id()
            );
            #[expect(
                clippy::zombie_processes,
                reason = "the watchdog outlives every test and ends with this process"
            )]
            let _watchdog = std::process::Command::new("bash")
                .arg("-c")
                .arg(script)
                .arg(&binary)
                .stdin(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Some(status) = raw_request(port, "PUT", &format!("/{BUCKET}")) {
                    assert!(status.contains(" 200 "), "creating the bucket: {status}");
                    return Some(format!("http://127.0.0.1:{port}"));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        panic!("moto_server {} did not start", binary.display());
    }

    /// The status line of an unsigned request to moto, or `None` when nothing answers.
    fn raw_request(port: u16, method: &str, target: &str) -> Option<String> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            stream,
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        response.lines().next().map(str::to_owned)
    }

    pub fn settings(endpoint: &str, secret: &str, token: &str) -> CloudSettings {
        CloudSettings::from_variables([
            ("MLFLOW_S3_ENDPOINT_URL".to_owned(), endpoint.to_owned()),
            ("AWS_ACCESS_KEY_ID".to_owned(), "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), secret.to_owned()),
            ("AWS_SESSION_TOKEN".to_owned(), token.to_owned()),
            ("AWS_DEFAULT_REGION".to_owned(), "us-east-1".to_owned()),
        ])
    }

    /// A store on a fresh prefix of the test bucket.
    pub async fn store(case: &str) -> Option<Arc<dyn ArtifactStore>> {
        let Some(endpoint) = endpoint() else {
            eprintln!("SKIPPED s3_backend::{case}: no moto_server");
            return None;
        };
        let location = format!("s3://{BUCKET}/{}/root", uuid::Uuid::new_v4().simple());
        Some(
            open_artifact_store(&location, &settings(endpoint, "testing", "token"))
                .await
                .unwrap(),
        )
    }

    /// Every key of the bucket under `prefix`, from a plain `object_store` client.
    async fn keys_under(prefix: &str) -> Vec<String> {
        use object_store::ObjectStore;
        let bucket = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_region("us-east-1")
            .with_endpoint(endpoint().unwrap())
            .with_allow_http(true)
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .build()
            .unwrap();
        let mut keys: Vec<String> = bucket
            .list(Some(&object_store::path::Path::from(prefix)))
            .map(|meta| meta.unwrap().location.to_string())
            .collect()
            .await;
        keys.sort();
        keys
    }

    /// Keys are MLflow's (the artifact path verbatim under the prefix, no re-encoding), and nothing is
    /// written outside the prefix.
    #[tokio::test]
    async fn keys_are_mlflow_keys_under_the_prefix() {
        let Some(endpoint) = endpoint() else { return };
        let base = uuid::Uuid::new_v4().simple().to_string();
        let settings = settings(endpoint, "testing", "token");
        let store = open_artifact_store(&format!("s3://{BUCKET}/{base}/inner/"), &settings)
            .await
            .unwrap();
        let sibling =
            open_artifact_store(&format!("s3://{BUCKET}/{base}/inner-sibling"), &settings)
                .await
                .unwrap();
        sibling.put(&path("keep.txt"), body(&[b"k"])).await.unwrap();
        for name in [
            "1/run/artifacts/a b~[1]%20{x}.txt",
            "1/run/artifacts/model/MLmodel",
        ] {
            store.put(&path(name), body(&[b"x"])).await.unwrap();
        }
        assert_eq!(
            keys_under(&base).await,
            [
                format!("{base}/inner-sibling/keep.txt"),
                format!("{base}/inner/1/run/artifacts/a b~[1]%20{{x}}.txt"),
                format!("{base}/inner/1/run/artifacts/model/MLmodel"),
            ]
        );
        store.delete(&path("1")).await.unwrap();
        assert_eq!(
            keys_under(&base).await,
            [format!("{base}/inner-sibling/keep.txt")]
        );
        assert_eq!(
            store.list(&ArtifactPath::root()).await.unwrap(),
            Some(vec![]),
            "the sibling prefix does not show through"
        );
    }

    async fn put_part(url: &str, content: Vec<u8>) -> String {
        let response = reqwest::Client::new()
            .put(url)
            .body(content)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{:?}", response.status());
        response.headers()["etag"].to_str().unwrap().to_owned()
    }

    /// The client's side of MLflow's presigned multipart upload: create, PUT each part to its URL,
    /// complete (parts reported out of order), then read the object back through the store.
    #[tokio::test]
    async fn presigned_multipart_upload_round_trips() {
        let Some(store) = store("presigned_multipart_upload_round_trips").await else {
            return;
        };
        let multipart = store
            .multipart_uploads()
            .expect("S3 offers multipart uploads");
        let target = path("1/run/artifacts/big.bin");
        let created = multipart.create_multipart_upload(&target, 3).await.unwrap();
        assert_eq!(created.credentials.len(), 3);
        let part_size = 5 * MIB;
        let content: Vec<u8> = (0..2 * part_size + 7)
            .map(|index| (index % 251) as u8)
            .collect();
        let mut parts = Vec::new();
        for (credential, chunk) in created.credentials.iter().zip(content.chunks(part_size)) {
            assert!(credential.headers.is_empty());
            assert!(
                credential.url.contains("X-Amz-Signature="),
                "{}",
                credential.url
            );
            assert!(credential
                .url
                .contains(&format!("partNumber={}", credential.part_number)));
            let etag = put_part(&credential.url, chunk.to_vec()).await;
            parts.push(UploadedPart {
                part_number: credential.part_number,
                etag,
            });
        }
        assert_eq!(
            store.head(&target).await.unwrap(),
            None,
            "not visible before completion"
        );
        parts.reverse();
        multipart
            .complete_multipart_upload(&target, &created.upload_id, parts)
            .await
            .unwrap();
        assert_eq!(read_all(&*store, "1/run/artifacts/big.bin").await, content);
    }

    #[tokio::test]
    async fn aborted_multipart_upload_leaves_nothing() {
        let Some(store) = store("aborted_multipart_upload_leaves_nothing").await else {
            return;
        };
        let multipart = store.multipart_uploads().unwrap();
        let target = path("1/run/artifacts/big.bin");
        let created = multipart.create_multipart_upload(&target, 2).await.unwrap();
        let etag = put_part(&created.credentials[0].url, vec![1; 16]).await;
        multipart
            .abort_multipart_upload(&target, &created.upload_id)
            .await
            .unwrap();
        // S3 answers 404 NoSuchUpload (RESOURCE_DOES_NOT_EXIST); moto answers 500.
        multipart
            .complete_multipart_upload(
                &target,
                &created.upload_id,
                vec![UploadedPart {
                    part_number: 1,
                    etag,
                }],
            )
            .await
            .unwrap_err();
        assert_eq!(store.head(&target).await.unwrap(), None);
    }

    #[tokio::test]
    async fn multipart_requests_are_checked() {
        let Some(store) = store("multipart_requests_are_checked").await else {
            return;
        };
        let multipart = store.multipart_uploads().unwrap();
        let target = path("a.bin");
        for num_parts in [0, 10_001] {
            let error = multipart
                .create_multipart_upload(&target, num_parts)
                .await
                .unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidParameterValue);
        }
        let error = multipart
            .create_multipart_upload(&ArtifactPath::root(), 1)
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidParameterValue);
        let part = |part_number: u32| UploadedPart {
            part_number,
            etag: "\"e\"".to_owned(),
        };
        for parts in [
            vec![],
            vec![part(2)],
            vec![part(1), part(1)],
            vec![part(1), part(3)],
        ] {
            let error = multipart
                .complete_multipart_upload(&target, "id", parts)
                .await
                .unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidParameterValue);
        }
    }

    /// A 64 MiB artifact goes up (server-side multipart) and down through the store with flat memory.
    #[tokio::test]
    async fn large_file_streams_with_flat_memory() {
        let Some(store) = store("large_file_streams_with_flat_memory").await else {
            return;
        };
        super::large_file_streams_with_flat_memory(&*store, 64, 48).await;
    }

    /// A log sink for one test: every line any layer writes, kept in memory.
    #[derive(Clone, Default)]
    struct CapturedLog(Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for CapturedLog {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Failures against a missing bucket and a dead endpoint, with secrets configured: no error text
    /// and no log line (at trace level) holds the secret key or the session token.
    #[tokio::test]
    async fn secrets_stay_out_of_errors_and_logs() {
        let Some(endpoint) = endpoint() else { return };
        const SECRET: &str = "s3cr3t-ACCESS-key-value";
        const TOKEN: &str = "s3ssion-TOKEN-value";
        let log = CapturedLog::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);

        let mut texts = Vec::new();
        for (endpoint, bucket) in [(endpoint, "no-such-bucket"), ("http://127.0.0.1:9", BUCKET)] {
            let store = open_artifact_store(
                &format!("s3://{bucket}/prefix"),
                &settings(endpoint, SECRET, TOKEN),
            )
            .await
            .unwrap();
            let target = path("1/run/artifacts/a.txt");
            let errors = [
                store.put(&target, body(&[b"x"])).await.err(),
                store.get(&target).await.err(),
                store.head(&target).await.err(),
                store.list(&path("1")).await.err(),
                store.delete(&target).await.err(),
                store
                    .multipart_uploads()
                    .unwrap()
                    .create_multipart_upload(&target, 2)
                    .await
                    .err(),
            ];
            for error in errors.into_iter().flatten() {
                texts.push(format!("{error} | {error:?}"));
            }
        }
        assert!(texts.len() >= 6, "the failures happened: {texts:?}");
        let log = String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
        for text in texts.iter().chain([&log]) {
            assert!(!text.contains(SECRET), "secret key leaked: {text}");
            assert!(!text.contains(TOKEN), "session token leaked: {text}");
        }
    }
}

/// Azure Blob and GCS on emulators named by the environment (see the crate docs of this file).
mod emulated {
    use super::*;
    use ferroflow_artifacts::{open_artifact_store, CloudSettings};

    async fn open(
        case: &str,
        variable: &str,
        location: String,
        setting: &str,
    ) -> Option<Arc<dyn ArtifactStore>> {
        let Ok(value) = std::env::var(variable) else {
            eprintln!("SKIPPED {case}: {variable} is not set (no emulator)");
            return None;
        };
        let settings = CloudSettings::from_variables([(setting.to_owned(), value)]);
        Some(open_artifact_store(&location, &settings).await.unwrap())
    }

    pub async fn azure_store(case: &str) -> Option<Arc<dyn ArtifactStore>> {
        let prefix = uuid::Uuid::new_v4().simple();
        open(
            &format!("azure_backend::{case}"),
            "FERROFLOW_TEST_AZURE_CONNECTION_STRING",
            format!("wasbs://ferroflow-test@devstoreaccount1.blob.core.windows.net/{prefix}/root"),
            "AZURE_STORAGE_CONNECTION_STRING",
        )
        .await
    }

    pub async fn gcs_store(case: &str) -> Option<Arc<dyn ArtifactStore>> {
        let prefix = uuid::Uuid::new_v4().simple();
        open(
            &format!("gcs_backend::{case}"),
            "FERROFLOW_TEST_GCS_EMULATOR",
            format!("gs://ferroflow-test/{prefix}/root"),
            "STORAGE_EMULATOR_HOST",
        )
        .await
    }
}
