//! Token packing: every token of an epoch exactly once, in document order,
//! on any world size and batch size, resumable mid-document; bad input is a
//! clear error.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float32Builder, Int64Array, Int64Builder, LargeListBuilder, ListArray, ListBuilder,
    StringArray, UInt32Builder,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field};
use arrow::record_batch::RecordBatch;
use mosaicrs::assemble::ElementsMut;
use mosaicrs::format::Compression;
use mosaicrs::loader::mix::{MixConfig, Stream as MixStream};
use mosaicrs::loader::{EpochOrder, OrderAlgorithm, SampleSpace, ShuffleMode};
use mosaicrs::reader::Dataset;
use mosaicrs::testing::write_partitions;
use mosaicrs::tokens::{TokenBatchMut, TokenConfig, TokenLoader, TokenState};
use mosaicrs::writer::{SaveMode, WriterOptions};
use mosaicrs::Error;

const EOS: i64 = 999_999;

/// Document `i`: 1 to 23 tokens `i * 1000 + j`, so a token names its
/// document and place.
fn doc(i: usize) -> Vec<i64> {
    let len = 1 + (i * 7 + (i * i) % 13) % 23;
    (0..len).map(|j| (i * 1000 + j) as i64).collect()
}

fn list_of(docs: &[Vec<i64>]) -> ListArray {
    let mut b = ListBuilder::new(Int64Builder::new());
    for d in docs {
        b.append_value(d.iter().map(|&t| Some(t)));
    }
    b.finish()
}

/// Writes `columns` (rows split into record batches of `batch_rows`, in
/// three write partitions) and opens the dataset.
fn write(
    dir: &std::path::Path,
    columns: Vec<(&str, ArrayRef)>,
    batch_rows: usize,
    compression: Compression,
) -> Arc<Dataset> {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let n = batch.num_rows();
    let batches: Vec<RecordBatch> = (0..n)
        .step_by(batch_rows)
        .map(|s| batch.slice(s, batch_rows.min(n - s)))
        .collect();
    let per_part = batches.len().div_ceil(3).max(1);
    let options = WriterOptions {
        compression,
        ..WriterOptions::default()
    };
    write_partitions(
        dir,
        &batch.schema(),
        "w0",
        batches.chunks(per_part),
        options,
        SaveMode::ErrorIfExists,
    )
    .unwrap();
    Arc::new(Dataset::open(dir).unwrap())
}

/// `n` documents `doc(0..n)` as `input_ids`, with an `id` column.
fn token_dataset(
    dir: &std::path::Path,
    n: usize,
    compression: Compression,
) -> (Arc<Dataset>, Vec<Vec<i64>>) {
    let docs: Vec<Vec<i64>> = (0..n).map(doc).collect();
    let ids = Arc::new(Int64Array::from_iter_values(0..n as i64)) as ArrayRef;
    let dataset = write(
        dir,
        vec![
            ("id", ids),
            ("input_ids", Arc::new(list_of(&docs)) as ArrayRef),
        ],
        32,
        compression,
    );
    (dataset, docs)
}

/// The epoch's stream as the contract defines it, and for each token the
/// stream offset where its document starts.
struct Stream {
    tokens: Vec<i64>,
    doc_start: Vec<usize>,
}

fn stream(dataset: &Dataset, docs: &[Vec<i64>], config: &TokenConfig, epoch: u64) -> Stream {
    let space = SampleSpace::new(&dataset.index().shards, config.rows.clone()).unwrap();
    let order = EpochOrder::new(
        &space,
        config.seed,
        epoch,
        config.shuffle,
        OrderAlgorithm::CURRENT,
    );
    let mut s = Stream {
        tokens: Vec::new(),
        doc_start: Vec::new(),
    };
    for p in 0..order.len() {
        let start = s.tokens.len();
        let d = &docs[space.row(order.get(p)) as usize];
        s.tokens.extend(d);
        s.tokens.extend(config.eos_id);
        s.doc_start.resize(s.tokens.len(), start);
    }
    s
}

/// One delivered row: tokens, positions, length.
type Row = (Vec<i64>, Vec<i64>, i64);

/// Runs every rank of `config.world_size` to the end of the current epoch
/// (from `state` when given): the rows by global sequence number, and the
/// state each rank ends in.
fn run_ranks(
    dataset: &Arc<Dataset>,
    config: &TokenConfig,
    state: Option<&TokenState>,
) -> (BTreeMap<u64, Row>, Vec<TokenState>) {
    run_ranks_with(|cfg| TokenLoader::new(dataset.clone(), cfg), config, state)
}

/// [`run_ranks`] with loaders that `make` builds from each rank's config.
fn run_ranks_with(
    make: impl Fn(TokenConfig) -> mosaicrs::Result<TokenLoader>,
    config: &TokenConfig,
    state: Option<&TokenState>,
) -> (BTreeMap<u64, Row>, Vec<TokenState>) {
    let (b, l) = (config.batch_size, config.seq_len);
    let mut rows = BTreeMap::new();
    let mut ends = Vec::new();
    let mut steps = None;
    for rank in 0..config.world_size {
        let cfg = TokenConfig {
            rank,
            ..config.clone()
        };
        let mut loader = make(cfg).unwrap();
        if let Some(s) = state {
            loader.restore(s.clone()).unwrap();
        }
        let planned = loader.plan().unwrap().steps;
        let mut taken = 0;
        loop {
            let before = loader.state().sequences_consumed;
            let Some(batch) = loader.next_batch().unwrap() else {
                break;
            };
            taken += 1;
            assert_eq!(batch.info.step, before / config.global_batch());
            for i in 0..b {
                let seq = before + (rank * b + i) as u64;
                let row = (
                    batch.input_ids[i * l..(i + 1) * l].to_vec(),
                    batch.position_ids[i * l..(i + 1) * l].to_vec(),
                    batch.lengths[i],
                );
                assert!(rows.insert(seq, row).is_none(), "sequence {seq} twice");
            }
        }
        assert_eq!(taken, planned, "rank {rank} takes the planned steps");
        assert_eq!(
            *steps.get_or_insert(taken),
            taken,
            "every rank takes the same steps"
        );
        ends.push(loader.state().clone());
    }
    (rows, ends)
}

/// Checks rows `first..` against the stream: real tokens in order, then
/// padding; positions restart at each document and each row.
fn check_rows(rows: &BTreeMap<u64, Row>, s: &Stream, config: &TokenConfig, first: u64) {
    let l = config.seq_len;
    let pad = config.pad_value();
    let mut x = first as usize * l;
    for (k, (seq, (ids, pos, len))) in rows.iter().enumerate() {
        assert_eq!(*seq, first + k as u64, "sequences are contiguous");
        let len = *len as usize;
        let row_start = *seq as usize * l;
        for j in 0..l {
            if j < len {
                assert_eq!(
                    ids[j], s.tokens[x],
                    "token at stream offset {x} (sequence {seq})"
                );
                let expected = x - s.doc_start[x].max(row_start);
                assert_eq!(pos[j], expected as i64, "position at stream offset {x}");
                x += 1;
            } else {
                assert_eq!(ids[j], pad, "padding in sequence {seq}");
                assert_eq!(
                    pos[j],
                    (j - len) as i64,
                    "padding position in sequence {seq}"
                );
            }
        }
        if len < l {
            assert_eq!(x, s.tokens.len(), "only rows at the stream's end are short");
        }
    }
    if config.drop_last {
        let step_tokens = config.global_batch() as usize * l;
        assert_eq!(
            x,
            first as usize * l + (s.tokens.len() - first as usize * l) / step_tokens * step_tokens
        );
    } else {
        assert_eq!(x, s.tokens.len(), "every token of the stream is delivered");
    }
}

#[test]
fn every_token_once_in_order_for_any_shape() {
    let dir = tempfile::tempdir().unwrap();
    let (dataset, docs) = token_dataset(dir.path(), 150, Compression::None);
    let total: usize = docs.iter().map(Vec::len).sum();
    for (l, b, w, drop_last, eos) in [
        (8, 2, 1, true, Some(EOS)),
        (8, 2, 1, false, Some(EOS)),
        (5, 3, 2, false, None),
        (5, 3, 2, true, None),
        (16, 1, 3, true, Some(EOS)),
        (3, 2, 3, false, Some(EOS)),
        (64, 2, 2, false, None),
        (1, 7, 2, false, Some(EOS)),
    ] {
        let config = TokenConfig {
            seq_len: l,
            batch_size: b,
            world_size: w,
            drop_last,
            eos_id: eos,
            pad_id: if eos.is_none() { Some(7) } else { None },
            seed: 5,
            ..TokenConfig::default()
        };
        let what = format!("L {l} B {b} W {w} drop_last {drop_last} eos {eos:?}");
        let loader = TokenLoader::new(dataset.clone(), config.clone()).unwrap();
        let s = stream(&dataset, &docs, &config, 0);
        assert_eq!(loader.total_tokens() as usize, s.tokens.len(), "{what}");
        assert_eq!(s.tokens.len(), total + if eos.is_some() { 150 } else { 0 });
        let plan = loader.epoch_plan().unwrap();
        let (rows, ends) = run_ranks(&dataset, &config, None);
        assert_eq!(rows.len() as u64, plan.sequences, "{what}");
        check_rows(&rows, &s, &config, 0);
        let delivered: u64 = rows.values().map(|r| r.2 as u64).sum();
        assert_eq!(
            delivered + plan.dropped_tokens,
            loader.total_tokens(),
            "{what}"
        );
        let padded = rows.values().filter(|r| (r.2 as usize) < l).count() as u64;
        assert_eq!(padded, plan.padded_sequences, "{what}");
        // Every rank ends at the start of the next epoch.
        for end in ends {
            assert_eq!((end.epoch, end.sequences_consumed), (1, 0), "{what}");
        }
    }
}

#[test]
fn compressed_shards_and_row_selection_give_the_same_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (dataset, docs) = token_dataset(dir.path(), 90, Compression::Zstd);
    let rows: Arc<[u64]> = (0..90).filter(|r| r % 3 != 1).collect();
    let config = TokenConfig {
        seq_len: 6,
        batch_size: 2,
        world_size: 2,
        drop_last: false,
        eos_id: Some(EOS),
        rows: Some(rows),
        shuffle: ShuffleMode::BlockLocal {
            shards_per_block: 1,
        },
        ..TokenConfig::default()
    };
    let s = stream(&dataset, &docs, &config, 0);
    let (got, _) = run_ranks(&dataset, &config, None);
    check_rows(&got, &s, &config, 0);
    assert!(s.tokens.iter().all(|t| *t == EOS || (t / 1000) % 3 != 1));
}

#[test]
fn resume_mid_document_continues_exactly_on_any_shape() {
    let dir = tempfile::tempdir().unwrap();
    let (dataset, docs) = token_dataset(dir.path(), 120, Compression::None);
    let config = TokenConfig {
        seq_len: 7,
        batch_size: 2,
        world_size: 2,
        rank: 1,
        eos_id: Some(EOS),
        seed: 9,
        ..TokenConfig::default()
    };
    let s = stream(&dataset, &docs, &config, 0);
    let mut uninterrupted = TokenLoader::new(dataset.clone(), config.clone()).unwrap();
    let mut all = Vec::new();
    while let Some(b) = uninterrupted.next_batch().unwrap() {
        all.push(b);
    }
    let mut mid_document = 0;
    for k in [1, 2, 5, all.len() - 1] {
        let mut first = TokenLoader::new(dataset.clone(), config.clone()).unwrap();
        for _ in 0..k {
            first.next_batch().unwrap().unwrap();
        }
        let json = first.state().to_json().unwrap();
        assert!(json.len() < 512, "the state is small: {json}");
        let state = TokenState::from_json(&json).unwrap();
        assert_eq!(state.sequences_consumed, k as u64 * 4);
        // The cursor is where sequence `consumed` starts in the stream.
        let x = state.sequences_consumed as usize * 7;
        assert_eq!(s.doc_start[x] + state.cursor_token as usize, x);
        mid_document += usize::from(state.cursor_token > 0);
        let mut resumed = TokenLoader::new(dataset.clone(), config.clone()).unwrap();
        resumed.restore(state.clone()).unwrap();
        let mut rest = Vec::new();
        while let Some(b) = resumed.next_batch().unwrap() {
            rest.push(b);
        }
        assert_eq!(rest, all[k..], "resume after {k} batches");

        // Another world size and batch size continue the same global stream.
        for (w, b) in [(3, 1), (1, 5), (2, 3)] {
            let other = TokenConfig {
                world_size: w,
                batch_size: b,
                rank: 0,
                ..config.clone()
            };
            let (rows, _) = run_ranks(&dataset, &other, Some(&state));
            check_rows(&rows, &s, &other, state.sequences_consumed);
        }
    }
    assert!(mid_document > 0, "some checkpoint falls inside a document");
}

#[test]
fn epochs_change_the_order_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let (dataset, docs) = token_dataset(dir.path(), 60, Compression::None);
    let config = TokenConfig {
        seq_len: 9,
        batch_size: 3,
        eos_id: Some(EOS),
        drop_last: false,
        seed: 3,
        ..TokenConfig::default()
    };
    let epoch = |loader: &mut TokenLoader| {
        let mut ids = Vec::new();
        while let Some(b) = loader.next_batch().unwrap() {
            ids.extend(b.input_ids);
        }
        ids
    };
    let mut loader = TokenLoader::new(dataset.clone(), config.clone()).unwrap();
    let e0 = epoch(&mut loader);
    assert_eq!(loader.state().epoch, 1);
    let e1 = epoch(&mut loader);
    assert_ne!(e0, e1, "another epoch, another order");
    let mut again = TokenLoader::new(dataset.clone(), config.clone()).unwrap();
    again.set_epoch(1);
    assert_eq!(epoch(&mut again), e1);
    again.set_epoch(0);
    assert_eq!(epoch(&mut again), e0);
    // Same tokens, another order: epoch 1's stream as the contract says.
    let s1 = stream(&dataset, &docs, &config, 1);
    let real: Vec<i64> = e1.iter().copied().take(s1.tokens.len()).collect();
    assert_eq!(real, s1.tokens);
    let mut sorted0 = e0.clone();
    let mut sorted1 = e1.clone();
    sorted0.sort_unstable();
    sorted1.sort_unstable();
    assert_eq!(sorted0, sorted1);
}

#[test]
fn int32_buffers_and_any_integer_type() {
    let dir = tempfile::tempdir().unwrap();
    let docs: Vec<Vec<i64>> = (0..40)
        .map(|i| (0..1 + i % 9).map(|j| (i * 10 + j) as i64).collect())
        .collect();
    let list = list_of(&docs);
    let large = cast(
        &list,
        &DataType::LargeList(Arc::new(Field::new_list_field(DataType::UInt16, true))),
    )
    .unwrap();
    let small = cast(
        &list,
        &DataType::List(Arc::new(Field::new_list_field(DataType::Int16, true))),
    )
    .unwrap();
    let dataset = write(
        dir.path(),
        vec![
            ("large", large),
            ("small", small),
            ("input_ids", Arc::new(list) as ArrayRef),
        ],
        16,
        Compression::None,
    );
    let mut expected = None;
    for column in ["input_ids", "large", "small"] {
        let config = TokenConfig {
            column: column.into(),
            seq_len: 5,
            batch_size: 4,
            eos_id: Some(1),
            vocab_size: Some(400),
            seed: 2,
            ..TokenConfig::default()
        };
        let mut loader = TokenLoader::new(dataset.clone(), config).unwrap();
        let mut ids = vec![0i32; 20];
        let mut pos = vec![0i32; 20];
        let mut lengths = vec![0i64; 4];
        let mut got = Vec::new();
        while loader
            .next_into(TokenBatchMut {
                input_ids: ElementsMut::I32(&mut ids),
                position_ids: ElementsMut::I32(&mut pos),
                lengths: &mut lengths,
            })
            .unwrap()
            .is_some()
        {
            got.push((ids.clone(), pos.clone(), lengths.clone()));
        }
        assert!(!got.is_empty());
        assert_eq!(
            expected.get_or_insert_with(|| got.clone()),
            &got,
            "column {column}"
        );
    }
    // The int64 path gives the same values.
    let config = TokenConfig {
        seq_len: 5,
        batch_size: 4,
        eos_id: Some(1),
        seed: 2,
        ..TokenConfig::default()
    };
    let mut loader = TokenLoader::new(dataset, config).unwrap();
    let first = loader.next_batch().unwrap().unwrap();
    let (ids32, pos32, _) = &expected.unwrap()[0];
    assert_eq!(
        first.input_ids,
        ids32.iter().map(|&v| i64::from(v)).collect::<Vec<_>>()
    );
    assert_eq!(
        first.position_ids,
        pos32.iter().map(|&v| i64::from(v)).collect::<Vec<_>>()
    );
}

fn message(e: Error) -> String {
    e.to_string()
}

#[test]
fn bad_columns_and_documents_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut floats = ListBuilder::new(Float32Builder::new());
    let mut empty = ListBuilder::new(Int64Builder::new());
    let mut nulls = LargeListBuilder::new(Int64Builder::new());
    let mut big = ListBuilder::new(UInt32Builder::new());
    for i in 0..10u32 {
        floats.append_value([Some(1.0)]);
        empty.append_value((0..(if i == 6 { 0 } else { 2 })).map(|t| Some(t as i64)));
        if i == 4 {
            nulls.append_null();
        } else {
            nulls.append_value([Some(1), Some(2)]);
        }
        big.append_value([Some(1), Some(if i == 7 { u32::MAX } else { 300 + i })]);
    }
    let strings = Arc::new(StringArray::from_iter_values(
        (0..10).map(|i| i.to_string()),
    ));
    let plain = Arc::new(Int64Array::from_iter_values(0..10));
    let dataset = write(
        dir.path(),
        vec![
            ("floats", Arc::new(floats.finish()) as ArrayRef),
            ("empty", Arc::new(empty.finish()) as ArrayRef),
            ("nulls", Arc::new(nulls.finish()) as ArrayRef),
            ("big", Arc::new(big.finish()) as ArrayRef),
            ("text", strings),
            ("plain", plain),
        ],
        4,
        Compression::None,
    );
    let open = |column: &str, vocab: Option<u64>| {
        let config = TokenConfig {
            column: column.into(),
            seq_len: 4,
            batch_size: 1,
            vocab_size: vocab,
            shuffle: ShuffleMode::Sequential,
            ..TokenConfig::default()
        };
        TokenLoader::new(dataset.clone(), config)
    };
    let err = |column: &str| open(column, None).err().expect("an error");
    assert!(matches!(err("missing"), Error::ColumnNotFound { ref name, .. } if name == "missing"));
    for column in ["floats", "text", "plain"] {
        let e = err(column);
        assert!(
            matches!(e, Error::UnsupportedColumn { .. }),
            "{column}: {e}"
        );
        assert!(message(e).contains("list of integers"));
    }
    let e = err("empty");
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    let m = message(e);
    assert!(
        m.contains("\"empty\"") && m.contains("empty document at dataset row 6"),
        "{m}"
    );
    // A row selection without the empty document reads the column.
    let selected = TokenConfig {
        column: "empty".into(),
        rows: Some((0..10).filter(|&r| r != 6).collect()),
        ..TokenConfig::default()
    };
    let loader = TokenLoader::new(dataset.clone(), selected).unwrap();
    assert_eq!(loader.total_tokens(), 18);
    let e = err("nulls");
    assert!(
        matches!(e, Error::NullValue { ref column, row: 4 } if column == "nulls"),
        "{e}"
    );

    // A token outside the vocabulary is named with its column, row and value.
    let mut loader = open("big", Some(1000)).unwrap();
    let mut failure = None;
    for _ in 0..10 {
        match loader.next_batch() {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                failure = Some(message(e));
                break;
            }
        }
    }
    let m = failure.expect("the vocabulary check fails");
    assert!(
        m.contains("\"big\"") && m.contains("row 7") && m.contains("4294967295"),
        "{m}"
    );
    assert!(m.contains("vocab_size = 1000"), "{m}");
    // The state stays before the failed batch.
    let state = loader.state().clone();
    assert!(loader.next_batch().is_err());
    assert_eq!(loader.state(), &state);
    // Without a vocabulary, int32 buffers refuse it too.
    let mut loader = open("big", None).unwrap();
    let (mut ids, mut pos, mut lengths) = (vec![0i32; 4], vec![0i32; 4], vec![0i64; 1]);
    let mut failed = false;
    for _ in 0..10 {
        match loader.next_into(TokenBatchMut {
            input_ids: ElementsMut::I32(&mut ids),
            position_ids: ElementsMut::I32(&mut pos),
            lengths: &mut lengths,
        }) {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                assert!(message(e).contains("does not fit in int32"));
                failed = true;
                break;
            }
        }
    }
    assert!(failed);
    // Buffers of the wrong size or type.
    let mut ids64 = vec![0i64; 3];
    let mut f = vec![0f32; 4];
    let e = loader
        .next_into(TokenBatchMut {
            input_ids: ElementsMut::I64(&mut ids64),
            position_ids: ElementsMut::I32(&mut pos),
            lengths: &mut lengths,
        })
        .unwrap_err();
    assert!(message(e).contains("input_ids buffer holds 3"));
    let e = loader
        .next_into(TokenBatchMut {
            input_ids: ElementsMut::I32(&mut ids),
            position_ids: ElementsMut::F32(&mut f),
            lengths: &mut lengths,
        })
        .unwrap_err();
    assert!(message(e).contains("position_ids as int64 or int32"));
}

#[test]
fn bad_options_and_states_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (dataset, _) = token_dataset(dir.path(), 30, Compression::None);
    let config = TokenConfig {
        seq_len: 4,
        batch_size: 2,
        eos_id: Some(EOS),
        ..TokenConfig::default()
    };
    for bad in [
        TokenConfig {
            seq_len: 0,
            ..config.clone()
        },
        TokenConfig {
            batch_size: 0,
            ..config.clone()
        },
        TokenConfig {
            rank: 2,
            world_size: 2,
            ..config.clone()
        },
        TokenConfig {
            vocab_size: Some(100),
            ..config.clone()
        },
    ] {
        let e = TokenLoader::new(dataset.clone(), bad)
            .err()
            .expect("refused");
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }
    let mut loader = TokenLoader::new(dataset.clone(), config.clone()).unwrap();
    loader.next_batch().unwrap().unwrap();
    let state = loader.state().clone();
    for (other, what) in [
        (
            TokenConfig {
                seq_len: 5,
                ..config.clone()
            },
            "seq_len",
        ),
        (
            TokenConfig {
                seed: 1,
                ..config.clone()
            },
            "seed",
        ),
        (
            TokenConfig {
                eos_id: None,
                ..config.clone()
            },
            "eos_id",
        ),
        (
            TokenConfig {
                shuffle: ShuffleMode::Sequential,
                ..config.clone()
            },
            "shuffle",
        ),
    ] {
        let mut l = TokenLoader::new(dataset.clone(), other).unwrap();
        let e = l.restore(state.clone()).unwrap_err();
        assert!(matches!(e, Error::ResumeMismatch(_)), "{e}");
        assert!(message(e).contains(what), "{what}");
    }
    let mut l = TokenLoader::new(dataset.clone(), config.clone()).unwrap();
    for broken in [
        TokenState {
            cursor_token: 10_000,
            ..state.clone()
        },
        TokenState {
            cursor_document: 31,
            ..state.clone()
        },
        TokenState {
            sequences_consumed: 1_000_000,
            ..state.clone()
        },
        TokenState {
            dataset: "xxh3-64:0".into(),
            ..state.clone()
        },
        TokenState {
            algorithm: "unknown".into(),
            ..state.clone()
        },
    ] {
        assert!(l.restore(broken).is_err());
    }
    l.restore(state).unwrap();
}

#[test]
fn the_loader_can_move_to_another_thread() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<TokenLoader>();
}

#[test]
fn an_epoch_shorter_than_a_step_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    let (dataset, _) = token_dataset(dir.path(), 3, Compression::None);
    let config = TokenConfig {
        seq_len: 64,
        batch_size: 4,
        ..TokenConfig::default()
    };
    let mut loader = TokenLoader::new(dataset.clone(), config.clone()).unwrap();
    let plan = loader.epoch_plan().unwrap();
    assert_eq!(
        (plan.steps, plan.dropped_tokens),
        (0, loader.total_tokens())
    );
    assert!(loader.next_batch().unwrap().is_none());
    assert_eq!(loader.state().epoch, 1);
    // Padded, the same stream is one step of one partial row and three
    // rows of padding.
    let mut padded = TokenLoader::new(
        dataset,
        TokenConfig {
            drop_last: false,
            ..config
        },
    )
    .unwrap();
    let batch = padded.next_batch().unwrap().unwrap();
    assert_eq!(batch.lengths, [padded.total_tokens() as i64, 0, 0, 0]);
    assert_eq!(batch.info.documents.len(), 3);
    assert_eq!(padded.epoch_plan().unwrap().padded_sequences, 4);
    assert!(padded.next_batch().unwrap().is_none());
    assert!(
        padded.next_batch().unwrap().is_some(),
        "the next epoch begins"
    );
}

/// Three token datasets of 200, 120 and 40 documents (the last compressed);
/// source `k`'s tokens are `k * 1_000_000 + doc(i)`, so a token names its
/// source, document and place.
fn mix_sources(dir: &std::path::Path) -> (Vec<Arc<Dataset>>, Vec<Vec<Vec<i64>>>) {
    [
        (200, Compression::None),
        (120, Compression::None),
        (40, Compression::Zstd),
    ]
    .into_iter()
    .enumerate()
    .map(|(k, (n, c))| {
        let docs: Vec<Vec<i64>> = (0..n)
            .map(|i| doc(i).iter().map(|t| t + k as i64 * 1_000_000).collect())
            .collect();
        let ids = Arc::new(Int64Array::from_iter_values(0..n as i64)) as ArrayRef;
        let columns = vec![
            ("id", ids),
            ("input_ids", Arc::new(list_of(&docs)) as ArrayRef),
        ];
        (write(&dir.join(format!("s{k}")), columns, 32, c), docs)
    })
    .unzip()
}

fn mix_streams(datasets: &[Arc<Dataset>], weights: &[f64]) -> Vec<MixStream<Arc<Dataset>>> {
    datasets
        .iter()
        .zip(weights)
        .map(|(d, &w)| MixStream::new(Arc::clone(d)).weight(w))
        .collect()
}

/// The stream of a mixed epoch: its mixed order's documents, each with its
/// separator, and the source of each document.
fn mixed_stream(
    loader: &TokenLoader,
    docs: &[Vec<Vec<i64>>],
    config: &TokenConfig,
    epoch: u64,
) -> (Stream, Vec<(usize, u64)>) {
    let order = loader.mixed_order(epoch).unwrap().unwrap();
    let mut s = Stream {
        tokens: Vec::new(),
        doc_start: Vec::new(),
    };
    let picks = order.picks(0..order.len());
    for &(k, row) in &picks {
        let start = s.tokens.len();
        s.tokens.extend(&docs[k][row as usize]);
        s.tokens.extend(config.eos_id);
        s.doc_start.resize(s.tokens.len(), start);
    }
    (s, picks)
}

#[test]
fn a_mix_packs_each_sources_share_once_on_any_world_size() {
    let dir = tempfile::tempdir().unwrap();
    let (datasets, docs) = mix_sources(dir.path());
    let weights = [0.6, 0.3, 0.1];
    // 360 documents: 216 of source 0 (every row once, 16 twice), 108 of
    // source 1's 120 and 36 of source 2's 40 (random subsets).
    let mix = MixConfig {
        block: Some(8),
        ..MixConfig::default()
    };
    let make = |cfg: TokenConfig| TokenLoader::mixed(mix_streams(&datasets, &weights), mix, cfg);
    let mut reference: Option<Stream> = None;
    for (l, b, w, drop_last) in [(16, 2, 1, false), (16, 3, 2, false), (7, 1, 3, true)] {
        let config = TokenConfig {
            seq_len: l,
            batch_size: b,
            world_size: w,
            drop_last,
            eos_id: Some(EOS),
            seed: 3,
            ..TokenConfig::default()
        };
        let what = format!("L {l} B {b} W {w}");
        let loader = make(config.clone()).unwrap();
        assert_eq!(loader.mix_counts(), [216, 108, 36], "{what}");
        assert_eq!(loader.documents(), 360);
        let (s, picks) = mixed_stream(&loader, &docs, &config, 0);
        assert_eq!(loader.total_tokens() as usize, s.tokens.len(), "{what}");
        // The same stream whatever the shape: the block is fixed.
        match &reference {
            Some(r) => assert_eq!(r.tokens, s.tokens, "{what}"),
            None => {
                reference = Some(Stream {
                    tokens: s.tokens.clone(),
                    doc_start: s.doc_start.clone(),
                })
            }
        }
        // Each source's share: its rows `passes` or `passes + 1` times.
        for (k, (&count, d)) in [216u64, 108, 36].iter().zip(&docs).enumerate() {
            let mut seen = vec![0u64; d.len()];
            for &(_, row) in picks.iter().filter(|p| p.0 == k) {
                seen[row as usize] += 1;
            }
            let passes = count / d.len() as u64;
            assert_eq!(seen.iter().sum::<u64>(), count, "source {k}");
            assert!(
                seen.iter().all(|&n| n == passes || n == passes + 1),
                "source {k}"
            );
        }
        // Every block of 8 documents holds each share within one.
        for block in picks.chunks_exact(8) {
            for (k, want) in [4.8, 2.4, 0.8].into_iter().enumerate() {
                let n = block.iter().filter(|p| p.0 == k).count() as f64;
                assert!((n - want).abs() < 1.0, "source {k}: {n} in a block of 8");
            }
        }
        let (rows, ends) = run_ranks_with(make, &config, None);
        check_rows(&rows, &s, &config, 0);
        if !drop_last {
            // Every token of each source's share exactly once.
            let mut delivered: HashMap<i64, i64> = HashMap::new();
            for (ids, _, len) in rows.values() {
                for &t in &ids[..*len as usize] {
                    *delivered.entry(t).or_default() += 1;
                }
            }
            let mut expected: HashMap<i64, i64> = HashMap::new();
            for &(k, row) in &picks {
                for &t in &docs[k][row as usize] {
                    *expected.entry(t).or_default() += 1;
                }
            }
            expected.insert(EOS, 360);
            assert_eq!(delivered, expected, "{what}");
        }
        for end in ends {
            assert_eq!((end.epoch, end.mix_block), (1, Some(8)), "{what}");
        }
    }
}

#[test]
fn a_mix_resumes_exactly_on_another_world_size_and_refuses_other_states() {
    let dir = tempfile::tempdir().unwrap();
    let (datasets, docs) = mix_sources(dir.path());
    let weights = [0.6, 0.3, 0.1];
    let make = |cfg: TokenConfig| {
        TokenLoader::mixed(mix_streams(&datasets, &weights), MixConfig::default(), cfg)
    };
    let config = TokenConfig {
        seq_len: 9,
        batch_size: 2,
        world_size: 2,
        drop_last: false,
        eos_id: Some(EOS),
        seed: 11,
        ..TokenConfig::default()
    };
    // Three steps on two ranks, then the state through JSON.
    let mut first = make(config.clone()).unwrap();
    for _ in 0..3 {
        first.next_batch().unwrap().unwrap();
    }
    let state = TokenState::from_json(&first.state().to_json().unwrap()).unwrap();
    assert_eq!(state.mix_block, Some(4));
    assert!(state.cursor_token > 0 || state.cursor_document > 0);
    let (s, _) = mixed_stream(&first, &docs, &config, 0);
    for (b, w) in [(2, 2), (3, 3), (1, 1)] {
        let other = TokenConfig {
            batch_size: b,
            world_size: w,
            ..config.clone()
        };
        let (rows, _) = run_ranks_with(make, &other, Some(&state));
        check_rows(&rows, &s, &other, state.sequences_consumed);
    }
    // The epoch after a resumed one is the mix's next epoch, block kept.
    let mut resumed = make(TokenConfig {
        world_size: 3,
        ..config.clone()
    })
    .unwrap();
    resumed.restore(state.clone()).unwrap();
    resumed.set_epoch(1);
    let (s1, _) = mixed_stream(&first, &docs, &config, 1);
    assert_ne!(s1.tokens, s.tokens);
    assert_eq!(resumed.total_tokens() as usize, s.tokens.len());
    resumed.next_batch().unwrap().unwrap();
    assert_eq!(resumed.total_tokens() as usize, s1.tokens.len());

    // Another mix, a single dataset's state, a state without its block.
    let other_mix = TokenLoader::mixed(
        mix_streams(&datasets, &[0.5, 0.4, 0.1]),
        MixConfig::default(),
        config.clone(),
    )
    .unwrap();
    let single = TokenLoader::new(datasets[0].clone(), config.clone()).unwrap();
    let mut mixed = make(config.clone()).unwrap();
    for (bad, what) in [
        (other_mix.state().clone(), "dataset"),
        (single.state().clone(), "dataset"),
        (
            TokenState {
                mix_block: None,
                ..state.clone()
            },
            "mix_block",
        ),
    ] {
        let e = mixed.restore(bad).unwrap_err();
        assert!(matches!(e, Error::ResumeMismatch(_)), "{e}");
        assert!(message(e).contains(what), "{what}");
    }
    let mut single = single;
    let e = single.restore(state).unwrap_err();
    assert!(message(e).contains("mix"));
}

#[test]
fn mix_sources_without_a_token_column_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (mut datasets, _) = mix_sources(dir.path());
    let text = write(
        &dir.path().join("text"),
        vec![(
            "input_ids",
            Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef,
        )],
        32,
        Compression::None,
    );
    let ids_only = write(
        &dir.path().join("ids"),
        vec![("id", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef)],
        32,
        Compression::None,
    );
    for (bad, what) in [(text, "mix source 1"), (ids_only, "mix source 1")] {
        datasets[1] = bad;
        let e = TokenLoader::mixed(
            mix_streams(&datasets, &[0.6, 0.3, 0.1]),
            MixConfig::default(),
            TokenConfig::default(),
        )
        .err()
        .unwrap();
        assert!(message(e).contains(what), "{what}");
    }
}
