"""The campaign screen's tabs: one module per tab, each a widget that draws a `CampaignView`.

A tab never writes to the store itself: it hands a change of the spec to its host (the campaign
screen), which applies it in a worker and sends every tab the new view.
"""
