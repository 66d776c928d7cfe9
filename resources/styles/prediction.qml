<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<!-- SINR map: band 1 = the model's relative score 0..1 (plasma ramp, fixed 0..1 limits so maps are
     comparable across species). Learned from presence-only records, the score ranks places; it is not
     a probability of occupancy, so the legend says "low/high relative score", never "absent/present".
     Nodata (ocean, outside the CRS domain, no covariates) is transparent. -->
<qgis version="3.22.16-Białowieża" styleCategories="AllStyleCategories" hasScaleBasedVisibilityFlag="0" minScale="1e+08" maxScale="0">
  <pipe>
    <provider>
      <resampling enabled="false" zoomedInResamplingMethod="nearestNeighbour" zoomedOutResamplingMethod="nearestNeighbour" maxOversampling="2"/>
    </provider>
    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" alphaBand="-1" nodataColor="" classificationMin="0" classificationMax="1">
      <rasterTransparency/>
      <minMaxOrigin>
        <limits>None</limits>
        <extent>WholeRaster</extent>
        <statAccuracy>Estimated</statAccuracy>
        <cumulativeCutLower>0.02</cumulativeCutLower>
        <cumulativeCutUpper>0.98</cumulativeCutUpper>
        <stdDevFactor>2</stdDevFactor>
      </minMaxOrigin>
      <rastershader>
        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" clip="0" minimumValue="0" maximumValue="1" labelPrecision="2">
          <colorramp type="gradient" name="[source]">
            <Option type="Map">
              <Option type="QString" name="color1" value="13,8,135,255"/>
              <Option type="QString" name="color2" value="240,249,33,255"/>
              <Option type="QString" name="discrete" value="0"/>
              <Option type="QString" name="rampType" value="gradient"/>
              <Option type="QString" name="stops" value="0.25;126,3,168,255:0.5;204,71,120,255:0.75;248,149,64,255"/>
            </Option>
            <prop k="color1" v="13,8,135,255"/>
            <prop k="color2" v="240,249,33,255"/>
            <prop k="discrete" v="0"/>
            <prop k="rampType" v="gradient"/>
            <prop k="stops" v="0.25;126,3,168,255:0.5;204,71,120,255:0.75;248,149,64,255"/>
          </colorramp>
          <item alpha="255" value="0" label="0.00 low relative score" color="#0d0887"/>
          <item alpha="255" value="0.25" label="0.25" color="#7e03a8"/>
          <item alpha="255" value="0.5" label="0.50" color="#cc4778"/>
          <item alpha="255" value="0.75" label="0.75" color="#f89540"/>
          <item alpha="255" value="1" label="1.00 high relative score" color="#f0f921"/>
          <rampLegendSettings minimumLabel="0 low relative score" maximumLabel="1 high relative score" prefix="" suffix="" direction="0" useContinuousLegend="1" orientation="2">
            <numericFormat id="basic">
              <Option type="Map">
                <Option type="QChar" name="decimal_separator" value=""/>
                <Option type="int" name="decimals" value="2"/>
                <Option type="int" name="rounding_type" value="0"/>
                <Option type="bool" name="show_plus" value="false"/>
                <Option type="bool" name="show_thousand_separator" value="true"/>
                <Option type="bool" name="show_trailing_zeros" value="false"/>
                <Option type="QChar" name="thousand_separator" value=""/>
              </Option>
            </numericFormat>
          </rampLegendSettings>
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" grayscaleMode="0" colorizeOn="0" colorizeRed="255" colorizeGreen="128" colorizeBlue="128" colorizeStrength="100" invertColors="0"/>
    <rasterresampler maxOversampling="2"/>
    <resamplingStage>resamplingFilter</resamplingStage>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
