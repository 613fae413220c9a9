"""The official AssemblyAI Python SDK (1.8.2) works against the local server unchanged."""
import assemblyai as aai


def test_sdk_uploads_and_transcribes_with_word_timestamps(local_api, sample_call):
    """SDK pointed at the local server by base_url: upload + transcribe a file, get words with ms times."""
    aai.settings.base_url = local_api.url
    aai.settings.api_key = "any-key-the-local-server-does-not-check"
    aai.settings.polling_interval = 0.5
    config = aai.TranscriptionConfig(speaker_labels=True, sentiment_analysis=True,
                                     speech_models=["universal-3-pro", "universal-2"])
    transcript = aai.Transcriber(config=config).transcribe(str(sample_call))
    assert transcript.status == aai.TranscriptStatus.completed, transcript.error
    assert len(transcript.words) > 100
    assert all(w.start <= w.end for w in transcript.words) and transcript.words[-1].end > 60_000
    assert {u.speaker for u in transcript.utterances} == {"A", "B"}
    assert transcript.sentiment_analysis[0].sentiment in set(aai.SentimentType)
    assert transcript.export_subtitles_vtt().startswith("WEBVTT")
