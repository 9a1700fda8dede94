"""`harlab serve`: a local web page to watch a model's activities live on a phone's stream and to review and
correct a recording's timeline.

- `batches`: the JSON batches clients send (harlab's own and the Sensor Logger app's HTTP push), parsed and checked;
- `live`: streams resampled onto the model's grid and predicted window by window;
- `review`: recordings under the served folder, their predicted timeline, and the label files saved from it;
- `app`: the FastAPI application (the only module that imports the web framework) and `serve` to run it.
"""
